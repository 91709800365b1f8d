"""Notifications per second through the webhook receiver, from the durable outbox and without.

Each round sends ``count`` notifications, each one firing alert as the dispatcher makes it
(`Alert.to_json`, ungrouped, so one POST apiece), signed with a secret, to the endpoint of
`alertsbench.endpoint` (another process, answering 204), three ways:

- ``httpx.Client.post``: the floor, one kept-alive `httpx.Client` posting bodies and headers
  made beforehand (no serialising, no signing);
- ``receiver.notify``: `WebhookReceiver.notify` in a loop, the baseline: what the receiver
  delivers when nothing stands between it and the alerts;
- ``courier from outbox``: the notifications are put in the outbox (`alerts.outbox.enqueue`
  inside `ingest.sqlite.transaction`, one transaction, as the engine does, timed on its own),
  then the time from `Courier.start` until the outbox is empty: the receiver is wrapped to
  time its ``notify`` calls and to signal the last one, after which the
  ``meshwatch_outbox_depth`` gauge the worker keeps is polled until it reads 0 (the last row
  deleted). What the courier adds around ``notify`` (its queries, and the DELETE that
  commits each delivery) is the rest of the time.

A fresh receiver (so a fresh connection) and a fresh outbox file serve each way and round;
a few notifications go first, untimed, so that imports and the first connection are out.
Afterwards the endpoint's counts must show every POST arrived, signed correctly, and the
outbox must be empty with nothing undeliverable.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

from alerts.base import Alert, Notification, Severity, State
from alerts.courier import Courier
from alerts.metrics import AlertMetrics
from alerts.outbox import Outbox, create_tables, enqueue
from alerts.receivers.webhook import WebhookReceiver, WebhookSettings
from ingest.sqlite import connect, transaction

from .endpoint import Endpoint
from .evaluation import fresh
from .fleet import BASE_TS

#: The webhook's secret: every body is signed, as a configured secret makes it.
SECRET = "bench-secret"
#: The receiver's name in the outbox.
NAME = "cmms"
#: Notifications sent untimed before each measurement.
WARMUP = 50
#: Seconds after which a courier that has not emptied the outbox is given up on.
TIMEOUT_S = 300.0
#: How the three ways are labelled, in the order a round runs them.
FLOOR, NOTIFY, COURIER = "httpx.Client.post", "receiver.notify", "courier from outbox"


@dataclass
class Delivery:
    """One way of delivering, measured once.

    Attributes
    ----------
    method : str
        `FLOOR`, `NOTIFY` or `COURIER`.
    round : int
        Which round (from 1).
    notifications : int
        Notifications delivered in the timed part (one POST each).
    seconds : float
        Time to deliver them (courier: from `Courier.start` to an empty outbox).
    per_s : float
        Notifications per second.
    cpu_s : float
        CPU seconds of this process (all its threads) over the timed part.
    endpoint_cpu_s : float or None
        CPU seconds of the endpoint process over the timed part.
    notify_s : float or None
        Courier only: time spent inside ``receiver.notify``.
    enqueue_us : float or None
        Courier only: µs per notification to enqueue them in one transaction.
    problems : list of str
        What did not check out (missing POSTs, bad signatures, rows left).
    """

    method: str
    round: int
    notifications: int
    seconds: float
    per_s: float
    cpu_s: float
    endpoint_cpu_s: float | None
    notify_s: float | None = None
    enqueue_us: float | None = None
    problems: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The measurement as JSON-ready data."""
        return asdict(self)


class TimedReceiver:
    """A `Receiver` that times the ``notify`` calls of the one it wraps.

    `done` is set once ``expected`` calls have returned, so that the benchmark can wait for
    the courier without polling it (polling took the GIL from the worker ~1,000 times a
    second and slowed it down measurably).
    """

    def __init__(self, inner: WebhookReceiver) -> None:
        self.name = inner.name
        self.inner = inner
        self.notify_ns = 0
        self.calls = 0
        self.expected = 0
        self.done = threading.Event()

    def notify(self, notification: Notification) -> None:
        """Deliver through the wrapped receiver, timing it."""
        t0 = time.perf_counter_ns()
        try:
            self.inner.notify(notification)
        finally:
            self.notify_ns += time.perf_counter_ns() - t0
            self.calls += 1
            if self.calls >= self.expected:
                self.done.set()

    def close(self) -> None:
        """Close the wrapped receiver."""
        self.inner.close()


def notifications(count: int, start: int = 0) -> list[Notification]:
    """``count`` single-alert notifications for `NAME`, as the dispatcher makes them."""
    out = []
    for n in range(start, start + count):
        ts = BASE_TS + n * 1_000_000_000
        alert = Alert(
            id=uuid.UUID(int=n).hex[:16],
            rule="spindle_hot",
            severity=Severity.CRITICAL,
            site=f"site-{n % 50:02d}",
            asset=f"cnc-{n // 50 % 40:03d}",
            kind="cnc-mill",
            state=State.FIRING,
            started_at=ts,
            value=93.4,
            message=f"spindle_temp_c is 93.4 (> 90) for 30s on cnc-{n // 50 % 40:03d} at "
            f"site-{n % 50:02d}",
            top_metric="spindle_temp_c",
            extra={"type": "limit"},
        )
        out.append(Notification(NAME, {}, [alert.to_json()], uuid.uuid4().hex))
    return out


def _receiver(endpoint: Endpoint) -> WebhookReceiver:
    return WebhookReceiver(
        NAME, WebhookSettings.model_validate({"url": endpoint.url, "secret": SECRET})
    )


def _posts_check(
    endpoint: Endpoint, before: dict[str, Any], expected: int, signed: bool
) -> list[str]:
    after = endpoint.stats()
    problems = []
    posts = after["posts"] - before["posts"]
    if posts != expected:
        problems.append(f"endpoint got {posts} POSTs, expected {expected}")
    if after["bad"] != before["bad"]:
        problems.append(f"{after['bad'] - before['bad']} bad signatures")
    if signed and after["unsigned"] != before["unsigned"]:
        problems.append(f"{after['unsigned'] - before['unsigned']} unsigned POSTs")
    return problems


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def floor(endpoint: Endpoint, count: int, round_: int) -> Delivery:
    """Plain `httpx.Client.post` of ready-made bodies and headers."""
    notes = notifications(WARMUP + count)
    ready = [
        (
            orjson.dumps(dict(n.alerts[0])),
            {"X-Meshwatch-Delivery": n.id, "Content-Type": "application/json"},
        )
        for n in notes
    ]
    with httpx.Client(timeout=5.0) as client:
        for body, headers in ready[:WARMUP]:
            client.post(endpoint.url, content=body, headers=headers).raise_for_status()
        before, ep0, cpu0 = endpoint.stats(), endpoint.cpu(), time.process_time()
        t0 = time.perf_counter()
        for body, headers in ready[WARMUP:]:
            client.post(endpoint.url, content=body, headers=headers).raise_for_status()
        seconds = time.perf_counter() - t0
        cpu, ep = time.process_time() - cpu0, _cpu_delta(ep0, endpoint.cpu())
    problems = _posts_check(endpoint, before, count, signed=False)
    return Delivery(FLOOR, round_, count, seconds, count / seconds, cpu, ep, problems=problems)


def notify_loop(endpoint: Endpoint, count: int, round_: int) -> Delivery:
    """`WebhookReceiver.notify` in a loop, no outbox."""
    notes = notifications(WARMUP + count)
    receiver = _receiver(endpoint)
    try:
        for n in notes[:WARMUP]:
            receiver.notify(n)
        before, ep0, cpu0 = endpoint.stats(), endpoint.cpu(), time.process_time()
        t0 = time.perf_counter()
        for n in notes[WARMUP:]:
            receiver.notify(n)
        seconds = time.perf_counter() - t0
        cpu, ep = time.process_time() - cpu0, _cpu_delta(ep0, endpoint.cpu())
    finally:
        receiver.close()
    problems = _posts_check(endpoint, before, count, signed=True)
    return Delivery(NOTIFY, round_, count, seconds, count / seconds, cpu, ep, problems=problems)


def courier(endpoint: Endpoint, count: int, round_: int, workdir: Path) -> Delivery:
    """Enqueue in the outbox, start the courier, time until the outbox is empty."""
    path = fresh(workdir / f"outbox-{round_}.db")
    notes = notifications(WARMUP + count)
    receiver = TimedReceiver(_receiver(endpoint))
    try:
        for n in notes[:WARMUP]:
            receiver.notify(n)
        receiver.notify_ns = receiver.calls = 0
        receiver.expected = count
        receiver.done.clear()
        conn = connect(path)
        try:
            create_tables(conn)
            t0 = time.perf_counter()
            with transaction(conn, "bench outbox"):
                enqueue(conn, notes[WARMUP:], time.time())
            enqueue_us = (time.perf_counter() - t0) / count * 1e6
        finally:
            conn.close()
        metrics = AlertMetrics()
        mail = Courier(path, {NAME: receiver}, metrics)
        before, ep0, cpu0 = endpoint.stats(), endpoint.cpu(), time.process_time()
        t0 = time.perf_counter()
        mail.start()
        receiver.done.wait(TIMEOUT_S)
        # The last notification is out; its row goes with the next commit.
        depth: float | None = None
        while depth != 0 and time.perf_counter() - t0 < TIMEOUT_S:
            depth = metrics.registry.get_sample_value("meshwatch_outbox_depth", {"receiver": NAME})
            if depth != 0:
                time.sleep(0.0005)
        seconds = time.perf_counter() - t0
        cpu, ep = time.process_time() - cpu0, _cpu_delta(ep0, endpoint.cpu())
        mail.close()
    finally:
        receiver.close()
    problems = _posts_check(endpoint, before, count, signed=True)
    if depth != 0:
        problems.append(f"outbox not empty after {TIMEOUT_S:.0f} s ({depth} left)")
    with Outbox(path) as outbox:
        if outbox.depth():
            problems.append(f"outbox holds {outbox.depth()}")
        if outbox.undeliverable():
            problems.append(f"{len(outbox.undeliverable())} undeliverable")
    delivered = metrics.registry.get_sample_value(
        "meshwatch_notifications_total", {"receiver": NAME, "outcome": "delivered"}
    )
    if delivered != count:
        problems.append(f"courier counted {delivered} delivered, expected {count}")
    return Delivery(
        COURIER,
        round_,
        count,
        seconds,
        count / seconds,
        cpu,
        ep,
        notify_s=receiver.notify_ns / 1e9,
        enqueue_us=enqueue_us,
        problems=problems,
    )


@dataclass
class DeliverySummary:
    """One way over its rounds: median notifications/s, its range, and ratio to notify."""

    method: str
    per_s_median: float
    per_s_min: float
    per_s_max: float
    vs_notify: float | None


def summarise(results: list[Delivery]) -> list[DeliverySummary]:
    """Medians per way, and each against ``receiver.notify``."""
    medians = {
        m: statistics.median(r.per_s for r in results if r.method == m)
        for m in (FLOOR, NOTIFY, COURIER)
        if any(r.method == m for r in results)
    }
    base = medians.get(NOTIFY)
    return [
        DeliverySummary(
            m,
            med,
            min(r.per_s for r in results if r.method == m),
            max(r.per_s for r in results if r.method == m),
            med / base if base else None,
        )
        for m, med in medians.items()
    ]


def run(
    count: int, rounds: int, workdir: Path, on_result: Callable[[Delivery], None]
) -> list[Delivery]:
    """Every way, ``rounds`` times, against one endpoint process; each result to `on_result`."""
    endpoint = Endpoint(SECRET)
    results = []
    try:
        for r in range(1, rounds + 1):
            steps: list[Callable[[], Delivery]] = [
                partial(floor, endpoint, count, r),
                partial(notify_loop, endpoint, count, r),
                partial(courier, endpoint, count, r, workdir),
            ]
            for step in steps:
                result = step()
                on_result(result)
                results.append(result)
    finally:
        endpoint.stop()
    return results
