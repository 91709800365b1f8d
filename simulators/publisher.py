"""The fleet runner: publish a simulated fleet to an MQTT broker like real sensors would.

Simulated time starts at ``start_ns`` and advances either paced by the wall clock (``speed=1``
is real time, ``speed=60`` an hour a minute) or as fast as the broker acknowledges
(``speed=None``; a window of unacknowledged messages bounds the memory). Readings go out at
QoS 1 over MQTT 5, one per message or ``batch`` readings of one asset as a JSON array, on the
docs/design.md §2 topic. The run ends after ``duration`` simulated seconds, ``count``
readings, a set ``stop`` event or Ctrl-C, and then writes the ground truth to ``labels_path``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from common.mqtt import Broker, Protocol, Session, Tls, bind, connect, new_client
from simulators.errors import BrokerError, SimulatorError
from simulators.fleet import FaultSpec, FleetSpec
from simulators.groundtruth import GroundTruth, write_labels
from simulators.simulation import SimReading, Simulation

_NS = 1_000_000_000
# Unacknowledged messages allowed in flight before the runner waits: bounds paho's queue in
# memory; ten times paho's inflight window (1000, what our mosquitto configs allow).
_WINDOW = 10_000
_ACK_TIMEOUT_S = 60.0  # no PUBACK progress for this long: the broker is gone or stuck
_TICK_S = 0.05  # how often a paced run looks at the clock and at `stop` when idle


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did: readings and messages published, wall and simulated seconds, labels."""

    readings: int
    messages: int
    seconds: float
    simulated_seconds: float
    labels: list[GroundTruth]

    @property
    def rate(self) -> float:
        """Readings per wall-clock second."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0


class _Connection:
    """A paho client that counts PUBACKs and lets the runner wait for them."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.published = 0
        self.acked = 0
        self.connected = threading.Event()
        self.refused: str | None = None
        self._cond = threading.Condition()
        # bind turns TCP_NODELAY on at each connect: QoS 1 publishing 560 -> 7,000 msg/s.
        bind(client, connected=self._on_connect, published=self._on_publish)

    def _on_connect(self, flags: mqtt.ConnectFlags, reason: ReasonCode) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def _on_publish(self, mid: int, reason: ReasonCode) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        # NO_CONN: paho keeps the message and sends it after its automatic reconnect.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise BrokerError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self.published += 1

    def wait_acked(self, pending: int) -> None:
        """Wait until at most ``pending`` messages are unacknowledged."""
        with self._cond:
            last = self.acked
            deadline = time.monotonic() + _ACK_TIMEOUT_S
            while self.published - self.acked > pending:
                if self.acked != last:
                    last, deadline = self.acked, time.monotonic() + _ACK_TIMEOUT_S
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerError(
                        f"the broker acknowledged {self.acked} of {self.published} messages and "
                        f"then nothing for {_ACK_TIMEOUT_S:.0f} s: is it still up?"
                    )
                self._cond.wait(min(left, 1.0))


def _connect(
    host: str,
    port: int,
    *,
    client_id: str,
    protocol: Protocol,
    username: str | None,
    password: str | None,
    tls: bool,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> _Connection:
    broker = Broker(
        host, port, username, password, Tls(ca_file, cert_file, key_file) if tls else None
    )
    session = Session(client_id, protocol, keepalive=30)
    client = new_client(broker, session)
    client.max_inflight_messages_set(1000)  # the mosquitto configs we ship allow 1000
    client.max_queued_messages_set(0)  # unbounded in paho; the runner's window bounds it
    connection = _Connection(client)
    try:
        connect(client, broker, session)
    except (OSError, ValueError) as exc:
        raise BrokerError(f"cannot connect to the broker at {host}:{port}: {exc}") from None
    client.loop_start()
    if not connection.connected.wait(15) or connection.refused:
        client.loop_stop()
        why = connection.refused or "no CONNACK within 15 s"
        raise BrokerError(f"the broker at {host}:{port} refused the connection: {why}")
    return connection


def topic_for(template: str, site: str, asset: str) -> str:
    """The topic of one asset from a template with ``{site}`` and ``{asset}``.

    Examples
    --------
    >>> topic_for("plant/{site}/{asset}/telemetry", "lyon", "c1")
    'plant/lyon/c1/telemetry'
    """
    return template.replace("{site}", site).replace("{asset}", asset)


def run(
    fleet: FleetSpec,
    *,
    host: str,
    port: int,
    topic: str = "plant/{site}/{asset}/telemetry",
    speed: float | None = 1.0,
    duration: float | None = None,
    count: int | None = None,
    batch: int = 1,
    start_ns: int | None = None,
    labels_path: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    client_id: str = "",
    protocol: Protocol = "5",
    progress: bool = True,
    stop: threading.Event | None = None,
    extra_faults: Sequence[FaultSpec] = (),
) -> RunSummary:
    """Publish ``fleet`` to the broker at ``host:port`` and return what was done.

    ``protocol`` is ``"5"`` or ``"3.1.1"`` (for brokers that speak only that, such as amqtt).
    Without ``duration``, ``count`` or ``stop`` the run goes on until Ctrl-C. Raises
    `BrokerError` when the broker cannot be reached or stops acknowledging, `FleetError` when
    an extra fault does not fit the fleet, `SimulatorError` for bad arguments.
    """
    if "{site}" not in topic or "{asset}" not in topic:
        raise SimulatorError(f"topic template {topic!r} needs {{site}} and {{asset}}")
    if speed is not None and speed <= 0:
        raise SimulatorError(f"speed must be positive (or None: as fast as possible), got {speed}")
    if batch < 1:
        raise SimulatorError(f"batch must be at least 1, got {batch}")
    if duration is not None and duration <= 0:
        raise SimulatorError(f"duration must be positive, got {duration}")
    if count is not None and count < 1:
        raise SimulatorError(f"count must be at least 1, got {count}")
    # Now, to the millisecond: the payloads' and labels' resolution, so both agree exactly.
    start = time.time_ns() // 1_000_000 * 1_000_000 if start_ns is None else start_ns
    sim = Simulation(fleet, start, extra_faults)
    connection = _connect(
        host,
        port,
        client_id=client_id,
        protocol=protocol,
        username=username,
        password=password,
        tls=tls,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
    )
    runner = _Runner(sim, connection, topic, batch)
    wall0 = time.monotonic()
    try:
        with _progress(progress, count, duration) as (bar, task):
            # Ctrl-C ends the run like `stop`: flush, wait for acks, write labels.
            with contextlib.suppress(KeyboardInterrupt):
                runner.loop(
                    speed, duration, count, stop, lambda: bar.update(task, **runner.shown(count))
                )
            runner.flush()
            bar.update(task, **runner.shown(count))
        connection.wait_acked(0)
    finally:
        run_end = runner.covered_ns or sim.now_ns
        if labels_path is not None:
            write_labels(labels_path, sim.labels, run_end=run_end)
        connection.client.disconnect()
        connection.client.loop_stop()
    return RunSummary(
        readings=runner.readings,
        messages=connection.published,
        seconds=time.monotonic() - wall0,
        simulated_seconds=(run_end - start) / _NS,
        labels=sim.labels,
    )


class _Runner:
    """The publishing loop's state: batches per asset and what has gone out."""

    def __init__(self, sim: Simulation, connection: _Connection, topic: str, batch: int) -> None:
        self.sim = sim
        self.connection = connection
        self.topic = topic
        self.batch = batch
        self.readings = 0
        self.covered_ns: int | None = None  # the end of simulated time, when a duration set it
        self._pending: dict[tuple[str, str], list[SimReading]] = {}
        self._topics: dict[tuple[str, str], str] = {}

    def loop(
        self,
        speed: float | None,
        duration: float | None,
        count: int | None,
        stop: threading.Event | None,
        show: Any,
    ) -> None:
        sim, start = self.sim, self.sim.start_ns
        end = None if duration is None else start + round(duration * _NS) - 1
        wall0 = time.monotonic()
        shown = wall0
        while stop is None or not stop.is_set():
            if speed is None:
                target = sim.next_ns + _NS  # a simulated second per step
            else:
                target = start + round((time.monotonic() - wall0) * speed * _NS)
                if sim.next_ns > target and (end is None or target < end):
                    wait = (sim.next_ns - target) / _NS / speed
                    time.sleep(min(_TICK_S, wait))
                    continue
            if end is not None:
                target = min(target, end)
            readings = sim.until(target)
            if count is not None:
                readings = readings[: count - self.readings]
            self.send(readings)
            if speed is None:
                self.connection.wait_acked(_WINDOW)
            if time.monotonic() - shown > 0.1:
                show()
                shown = time.monotonic()
            if end is not None and target >= end:
                self.covered_ns = end + 1  # readings up to `end` inclusive: the whole duration
                return
            if count is not None and self.readings >= count:
                return

    def send(self, readings: list[SimReading]) -> None:
        publish = self.connection.publish
        for reading in readings:
            key = (reading.site, reading.asset)
            topic = self._topics.get(key)
            if topic is None:
                topic = self._topics[key] = topic_for(self.topic, *key)
            self.readings += 1
            if self.batch == 1:
                publish(topic, orjson.dumps(reading.payload()))
                continue
            pending = self._pending.setdefault(key, [])
            pending.append(reading)
            if len(pending) >= self.batch:
                publish(topic, orjson.dumps([r.payload() for r in pending]))
                pending.clear()

    def flush(self) -> None:
        """Publish the partial batches left at the end of the run."""
        for key, pending in self._pending.items():
            if pending:
                self.connection.publish(
                    self._topics[key], orjson.dumps([r.payload() for r in pending])
                )
                pending.clear()

    def shown(self, count: int | None) -> dict[str, Any]:
        """What the progress bar shows now."""
        done = self.readings if count is not None else (self.sim.now_ns - self.sim.start_ns) / _NS
        return {"completed": done, "readings": self.readings}


class _NoBar:
    def update(self, task: int, **fields: Any) -> None:
        pass


class _progress:  # lower case: used like a function, as contextlib's context managers are
    """A rich progress bar on stderr (or nothing) over readings or simulated seconds."""

    def __init__(self, enabled: bool, count: int | None, duration: float | None) -> None:
        self.enabled = enabled
        self.total = float(count) if count is not None else duration
        self.unit = "readings" if count is not None else "simulated s"
        self._bar: Progress | None = None

    def __enter__(self) -> tuple[Any, int]:
        if not self.enabled:
            return _NoBar(), 0
        self._bar = Progress(
            TextColumn(f"[bold]simulating[/] ({self.unit})"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[readings]} readings"),
            console=Console(stderr=True),
        )
        self._bar.start()
        return self._bar, self._bar.add_task("run", total=self.total, readings=0)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
