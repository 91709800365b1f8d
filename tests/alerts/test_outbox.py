"""Tests of the durable outbox and its courier (`alerts.outbox`), on real SQLite files."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import wait_for

from alerts.base import Notification, Receiver
from alerts.courier import Courier
from alerts.errors import DeliveryError
from alerts.metrics import AlertMetrics
from alerts.outbox import Outbox, create_tables, enqueue
from ingest.sqlite import connect, transaction

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fake clock's start
TIMEOUT = 10.0  # seconds a wait_for may take before the test fails (normally milliseconds)


class FakeReceiver:
    """A receiver that records notification ids, failing as told.

    `errors` are raised by the first attempts, one each; while `down` is set, every attempt
    raises it; while `gate` is set up and not open, notify blocks (a slow endpoint).
    """

    def __init__(
        self,
        name: str,
        errors: Sequence[BaseException] = (),
        *,
        down: DeliveryError | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.name = name
        self.errors = list(errors)
        self.down = down
        self.gate = gate
        self.attempted: list[str] = []
        self.delivered: list[str] = []

    def notify(self, notification: Notification) -> None:
        self.attempted.append(notification.id)
        if self.gate is not None:
            self.gate.wait(TIMEOUT)
        if self.errors:
            raise self.errors.pop(0)
        if self.down is not None:
            raise self.down
        self.delivered.append(notification.id)

    def close(self) -> None:
        pass


class FakeClock:
    """A wall clock that moves only when told, counting how often it is read."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Return where the alert engine's file goes."""
    return tmp_path / "alerts.db"


@pytest.fixture
def db(path: Path) -> Iterator[sqlite3.Connection]:
    """Yield the engine's connection to the file, with the outbox tables."""
    conn = connect(path)
    create_tables(conn)
    yield conn
    conn.close()


@pytest.fixture
def metrics() -> AlertMetrics:
    """Return fresh metrics on their own registry."""
    return AlertMetrics()


@pytest.fixture
def start(path: Path, metrics: AlertMetrics) -> Iterator[Callable[..., Courier]]:
    """Yield a factory of started couriers on `path` (fast retries), closed afterwards."""
    made: list[Courier] = []

    def factory(*receivers: FakeReceiver, **options: Any) -> Courier:
        options = {"retry_min": 0.001, "retry_max": 0.01, "poll": 0.05, **options}
        mapping: dict[str, Receiver] = {r.name: r for r in receivers}
        courier = Courier(path, mapping, options.pop("metrics", metrics), **options)
        made.append(courier)
        courier.start()
        return courier

    yield factory
    for courier in made:
        courier.close()


def add(conn: sqlite3.Connection, receiver: str, *ids: str) -> None:
    """Enqueue one notification per id for `receiver`, committed in one transaction."""
    with transaction(conn, "test"):
        enqueue(conn, [Notification(receiver, {}, [{"id": i}], id=i) for i in ids], now=T0)


def rows(path: Path) -> list[tuple[str, int, float, str | None]]:
    """(receiver, attempts, next_at, last_error) of every outbox row, oldest first."""
    conn = sqlite3.connect(path)
    try:
        query = "SELECT receiver, attempts, next_at, last_error FROM outbox ORDER BY id"
        return [tuple(row) for row in conn.execute(query)]
    finally:
        conn.close()


def depth(path: Path) -> dict[str, int]:
    """What the read side says is waiting."""
    with Outbox(path) as outbox:
        return outbox.depth()


def count(metrics: AlertMetrics, receiver: str, outcome: str) -> float:
    """The notifications counter of `receiver` and `outcome`."""
    labels = {"receiver": receiver, "outcome": outcome}
    return metrics.registry.get_sample_value("meshwatch_notifications_total", labels) or 0.0


def outcomes(metrics: AlertMetrics) -> dict[str, tuple[float, ...]]:
    """(delivered, retried, failed) counts of the receivers ops and hook."""
    kinds = ("delivered", "retried", "failed")
    return {r: tuple(count(metrics, r, o) for o in kinds) for r in ("ops", "hook")}


def gauge(metrics: AlertMetrics, receiver: str) -> float | None:
    """The outbox depth gauge of `receiver`."""
    return metrics.registry.get_sample_value("meshwatch_outbox_depth", {"receiver": receiver})


def test_notifications_are_delivered_in_order(db, path, start) -> None:
    """Each receiver gets its notifications in the order they were enqueued."""
    ops = FakeReceiver("ops")
    add(db, "ops", "n1", "n2")
    add(db, "ops", "n3")
    start(ops)
    wait_for(lambda: len(ops.delivered) == 3, TIMEOUT, "three deliveries")
    assert ops.delivered == ["n1", "n2", "n3"]
    wait_for(lambda: depth(path) == {}, TIMEOUT, "the delivered rows removed")


def test_retryable_failures_are_retried_until_each_is_delivered_once_in_order(
    db, start, metrics
) -> None:
    """A receiver failing retryably 3 times then recovering gets all, in order, no duplicates."""
    ops = FakeReceiver("ops", [DeliveryError("timeout")] * 3)
    add(db, "ops", "n1", "n2", "n3")
    start(ops)
    wait_for(lambda: len(ops.delivered) == 3, TIMEOUT, "three deliveries")
    assert ops.delivered == ["n1", "n2", "n3"]
    assert ops.attempted == ["n1"] * 4 + ["n2", "n3"]
    assert count(metrics, "ops", "retried") == 3


def test_a_failed_attempt_is_recorded_on_disk(db, path, start) -> None:
    """A retryable failure adds an attempt, saves the error and schedules a backed-off retry."""
    clock = FakeClock()
    add(db, "ops", "n1")
    ops = FakeReceiver("ops", down=DeliveryError("503 busy"))
    start(ops, retry_min=10, retry_max=20, clock=clock)
    wait_for(lambda: rows(path)[0][1] == 1, TIMEOUT, "one attempt recorded")
    ((receiver, attempts, next_at, error),) = rows(path)
    assert (receiver, attempts, error) == ("ops", 1, "503 busy")
    assert T0 + 5 <= next_at <= T0 + 10  # backoff(1, 10, ...) is 5..10 s (equal jitter)


def test_retry_after_is_honoured(db, path, start) -> None:
    """A far end's Retry-After delays the next attempt even past the backoff."""
    clock = FakeClock()
    ops = FakeReceiver("ops", [DeliveryError("429", retry_after=30.0)])
    add(db, "ops", "n1")
    courier = start(ops, clock=clock, poll=0.01)
    wait_for(lambda: rows(path)[0][1] == 1, TIMEOUT, "the refused attempt")
    assert rows(path)[0][2] == T0 + 30.0
    clock.now = T0 + 29.9
    calls = clock.calls
    courier.poke()
    # Two more reads of the clock: the worker has looked at the row at T0 + 29.9 and waited.
    wait_for(lambda: clock.calls >= calls + 2, TIMEOUT, "the worker to look again")
    assert ops.delivered == []
    clock.now = T0 + 30.0
    courier.poke()
    wait_for(lambda: ops.delivered == ["n1"], TIMEOUT, "the delivery after Retry-After")


def test_a_non_retryable_failure_moves_the_row_to_undeliverable(db, path, start) -> None:
    """A refusal for good moves the row to undeliverable with its error, and n2 goes out."""
    ops = FakeReceiver("ops", [DeliveryError("400 bad request", retryable=False)])
    add(db, "ops", "n1", "n2")
    start(ops)
    wait_for(lambda: ops.delivered == ["n2"], TIMEOUT, "the next notification")
    with Outbox(path) as outbox:
        (failed,) = outbox.undeliverable()
    assert failed.notification is not None
    assert (failed.receiver, failed.notification.id) == ("ops", "n1")
    assert (failed.attempts, failed.error) == (1, "400 bad request")
    wait_for(lambda: depth(path) == {}, TIMEOUT, "the delivered rows removed")


def test_a_row_that_cannot_be_read_moves_to_undeliverable(db, path, start) -> None:
    """A stored body that is not a notification is given up instead of blocking the queue."""
    with transaction(db, "test"):
        db.execute("INSERT INTO outbox (receiver, body, created) VALUES ('ops', 'junk', 0)")
    add(db, "ops", "n2")
    ops = FakeReceiver("ops")
    start(ops)
    wait_for(lambda: ops.delivered == ["n2"], TIMEOUT, "the next notification")
    with Outbox(path) as outbox:
        (failed,) = outbox.undeliverable()
    assert failed.notification is None
    assert "cannot be read" in failed.error


def test_undeliverable_lists_the_newest_first_up_to_the_limit(db, path, start) -> None:
    """undeliverable(limit) returns the most recent refusals first."""
    refusal = DeliveryError("410 gone", retryable=False)
    ops = FakeReceiver("ops", down=refusal)
    add(db, "ops", "n1", "n2", "n3")
    start(ops)
    wait_for(lambda: depth(path) == {}, TIMEOUT, "all three refused")
    with Outbox(path) as outbox:
        assert [u.id for u in outbox.undeliverable(limit=2)] == [3, 2]


def test_one_receiver_stuck_does_not_delay_another(db, start) -> None:
    """While one receiver hangs in notify, another gets all its notifications."""
    gate = threading.Event()
    slow = FakeReceiver("slow", gate=gate)
    fast = FakeReceiver("fast")
    add(db, "slow", "s1", "s2")
    add(db, "fast", "f1", "f2", "f3")
    try:
        start(slow, fast)
        wait_for(lambda: fast.delivered == ["f1", "f2", "f3"], TIMEOUT, "fast deliveries")
        assert slow.delivered == []
    finally:
        gate.set()
    wait_for(lambda: slow.delivered == ["s1", "s2"], TIMEOUT, "slow deliveries")


def test_one_receiver_down_does_not_delay_another(db, start) -> None:
    """While one receiver keeps failing, another gets all its notifications."""
    down = FakeReceiver("down", down=DeliveryError("connection refused"))
    up = FakeReceiver("up")
    add(db, "down", "d1")
    add(db, "up", "u1", "u2")
    start(down, up)
    wait_for(lambda: up.delivered == ["u1", "u2"], TIMEOUT, "deliveries to the live receiver")
    assert down.delivered == []


def test_a_restart_delivers_what_the_previous_courier_left(db, path, start, metrics) -> None:
    """Rows left by a closed courier are delivered, in order, by the next one on the file."""
    down = FakeReceiver("ops", down=DeliveryError("connection refused"))
    add(db, "ops", "n1", "n2", "n3")
    start(down).close()
    assert [r[0] for r in rows(path)] == ["ops"] * 3
    back = FakeReceiver("ops")
    start(back, metrics=AlertMetrics())
    wait_for(lambda: len(back.delivered) == 3, TIMEOUT, "deliveries after the restart")
    assert back.delivered == ["n1", "n2", "n3"]


def test_a_restart_continues_the_backoff_from_disk(db, path, start) -> None:
    """A row scheduled by an earlier run waits for its time, and its attempts keep counting."""
    clock = FakeClock()
    add(db, "ops", "n1")
    with transaction(db, "test"):
        db.execute("UPDATE outbox SET attempts = 2, next_at = ?", (T0 + 50,))
    ops = FakeReceiver("ops", down=DeliveryError("still down"))
    courier = start(ops, clock=clock, retry_max=300, poll=0.01)
    calls = clock.calls
    wait_for(lambda: clock.calls >= calls + 2, TIMEOUT, "the worker to look")
    assert ops.attempted == []
    clock.now = T0 + 50
    courier.poke()
    wait_for(lambda: rows(path)[0][1] == 3, TIMEOUT, "the third attempt")
    assert ops.attempted == ["n1"]


def test_a_wait_left_by_an_earlier_run_is_capped_at_retry_max(db, path, start) -> None:
    """A retry time further away than retry_max is brought forward to now + retry_max."""
    add(db, "ops", "n1")
    with transaction(db, "test"):
        db.execute("UPDATE outbox SET attempts = 9, next_at = ?", (T0 + 86_400,))
    start(FakeReceiver("ops"), clock=FakeClock(), retry_max=5)
    assert rows(path)[0][2] == T0 + 5


def test_enqueue_inside_a_rolled_back_transaction_leaves_nothing(db, path) -> None:
    """Notifications of a transaction that rolls back never reach the outbox."""
    with pytest.raises(RuntimeError), transaction(db, "test"):
        enqueue(db, [Notification("ops", {}, [], id="n1")], now=T0)
        raise RuntimeError("the alert state write failed")
    assert depth(path) == {}


def test_create_tables_does_not_end_the_callers_transaction(db) -> None:
    """create_tables inside an open transaction leaves it open (no implicit COMMIT)."""
    db.execute("BEGIN IMMEDIATE")
    create_tables(db)
    assert db.in_transaction
    db.execute("ROLLBACK")


def test_create_tables_is_idempotent(db, path) -> None:
    """Creating the tables again keeps the rows they hold."""
    add(db, "ops", "n1")
    create_tables(db)
    assert depth(path) == {"ops": 1}


def test_rows_of_an_unknown_receiver_are_kept_and_named_once(db, path, start, caplog) -> None:
    """Rows for a receiver no longer configured stay queued, with one warning naming it."""
    ops = FakeReceiver("ops")
    add(db, "gone", "g1", "g2")
    add(db, "ops", "n1")
    with caplog.at_level(logging.WARNING, logger="alerts.outbox"):
        start(ops)
        wait_for(lambda: ops.delivered == ["n1"], TIMEOUT, "the known receiver's delivery")
    wait_for(lambda: depth(path) == {"gone": 2}, TIMEOUT, "the delivered rows removed")
    (warning,) = [r for r in caplog.records if "'gone'" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "2 notifications" in warning.getMessage()


def test_counters_count_delivered_retried_and_failed(db, start, metrics) -> None:
    """Each outcome moves the notifications counter of its receiver."""
    ops = FakeReceiver("ops", [DeliveryError("timeout")])
    hook = FakeReceiver("hook", [DeliveryError("403", retryable=False)])
    courier = start(ops, hook)
    add(db, "ops", "n1")
    add(db, "hook", "h1", "h2")
    courier.poke()
    # (delivered, retried, failed) of each receiver, once both queues are empty
    expected = {"ops": (1, 1, 0), "hook": (1, 0, 1)}
    wait_for(lambda: outcomes(metrics) == expected, TIMEOUT, f"counters {expected}")


def test_the_depth_gauge_follows_the_rows(db, path, start, metrics) -> None:
    """outbox_depth counts rows found at start, rows added later, and drops as they go."""
    clock = FakeClock()
    ops = FakeReceiver("ops", down=DeliveryError("down"))
    add(db, "ops", "n1", "n2")
    courier = start(ops, clock=clock, retry_min=60, retry_max=60)
    assert gauge(metrics, "ops") == 2
    add(db, "ops", "n3")
    courier.poke()
    wait_for(lambda: gauge(metrics, "ops") == 3, TIMEOUT, "the added row counted")
    ops.down = None
    clock.now += 60
    courier.poke()
    wait_for(lambda: gauge(metrics, "ops") == 0, TIMEOUT, "the gauge to drain")
    assert depth(path) == {}


def test_an_unexpected_exception_is_retried_and_logged_with_its_traceback(
    db, start, caplog
) -> None:
    """A receiver bug counts as retryable, and its traceback is logged."""
    ops = FakeReceiver("ops", [ZeroDivisionError("bug in a receiver")])
    add(db, "ops", "n1")
    with caplog.at_level(logging.ERROR, logger="alerts.outbox"):
        start(ops)
        wait_for(lambda: ops.delivered == ["n1"], TIMEOUT, "the delivery after the bug")
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.levelno == logging.ERROR
    assert "'ops'" in record.getMessage()


def test_rows_committed_elsewhere_are_delivered_without_a_poke(db, start) -> None:
    """An idle worker polls, so rows another process commits go out without poke()."""
    ops = FakeReceiver("ops")
    start(ops, poll=0.02)
    add(db, "ops", "n1")
    wait_for(lambda: ops.delivered == ["n1"], TIMEOUT, "the polled delivery")


def test_a_slow_delivery_finishes_its_attempt_after_close(db, path, start, caplog) -> None:
    """close() returns after its timeout; the attempt in hand ends and its outcome is kept."""
    gate = threading.Event()
    ops = FakeReceiver("ops", gate=gate)
    add(db, "ops", "n1")
    courier = start(ops)
    wait_for(lambda: ops.attempted == ["n1"], TIMEOUT, "the attempt to begin")
    with caplog.at_level(logging.WARNING, logger="alerts.outbox"):
        courier.close(timeout=0.01)
    assert any("still delivering" in r.getMessage() for r in caplog.records)
    gate.set()
    wait_for(lambda: depth(path) == {}, TIMEOUT, "the delivered row to be removed")
    wait_for(
        lambda: all(t.name != "outbox-ops" for t in threading.enumerate()),
        TIMEOUT,
        "the worker to exit",
    )
    assert ops.delivered == ["n1"]


def test_retry_bounds_out_of_order_are_refused(path, metrics) -> None:
    """A retry_min above retry_max is a configuration error naming both."""
    with pytest.raises(ValueError, match=r"retry_min \(10\.0\) .* retry_max \(1\.0\)"):
        Courier(path, {}, metrics, retry_min=10.0, retry_max=1.0)


def test_starting_twice_is_refused(start) -> None:
    """A courier starts its workers once."""
    courier = start(FakeReceiver("ops"))
    with pytest.raises(RuntimeError, match="already started"):
        courier.start()
