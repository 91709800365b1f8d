"""The replayer: publish recorded (or dataset) messages to a broker, with their original timing.

Each message goes out with its own topic, QoS and retain flag, in the order given, which keeps
every topic's order. Message *i* is published ``(t_i - t_0) / speed`` seconds after the first
(``speed`` ``None`` or 0: as fast as possible); a replay that falls behind (a slow broker)
publishes late rather than dropping, and catches up.

Delivery: one MQTT 5 connection, messages at their recorded QoS (a recording of QoS 1
telemetry replays at QoS 1; a QoS 0 message stays QoS 0). At most `_WINDOW` messages are
unacknowledged at a time (paho's in-flight limit is raised to match, and mosquitto's test
configuration allows 1,000): past it the replayer waits, so paho never holds a QoS 1 message
back while a later QoS 0 one overtakes it. `replay` returns once the broker has acknowledged
every message (PUBACK, or written to the socket for QoS 0); a broker that is away meanwhile
gets the unacknowledged ones again after paho reconnects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from itertools import chain
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from common.mqtt import Broker, Session, Tls, new_client, set_nodelay
from simulators.recording import BrokerError, Recorded

# Unacknowledged messages at most; paho's in-flight window and mosquitto's
# max_inflight_messages in our configuration (docs/design.md §12: inflight 1000 reached 50k msg/s).
_WINDOW = 1000
# Seconds to wait for the CONNACK, and for the last acknowledgements at the end.
_CONNECT_TIMEOUT = 10.0
_ACK_TIMEOUT = 60.0
# The progress bar is advanced every this many messages: advancing it costs a lock and a
# dict update, too much per message at 50k msg/s.
_PROGRESS_EVERY = 64


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay did: messages published and acknowledged, seconds, messages per second."""

    messages: int
    seconds: float
    rate: float

    def __str__(self) -> str:
        return f"{self.messages} messages in {self.seconds:.2f} s ({self.rate:,.0f} messages/s)"


class BackToBack:
    """Several streams one after the other, re-iterable (for ``loop``).

    Each stream is shifted in time to start where the previous ended, so files from
    different days replay back to back.

    Examples
    --------
    >>> day1 = [Recorded(100.0, "a", 1, False, b"1"), Recorded(101.0, "a", 1, False, b"2")]
    >>> day2 = [Recorded(900.0, "b", 1, False, b"3")]
    >>> [(m.t, m.topic) for m in BackToBack([day1, day2])]
    [(100.0, 'a'), (101.0, 'a'), (101.0, 'b')]
    """

    def __init__(self, streams: list[Iterable[Recorded]]) -> None:
        self.streams = streams

    def __iter__(self) -> Iterator[Recorded]:
        end: float | None = None
        for stream in self.streams:
            shift: float | None = None
            for message in stream:
                if shift is None:
                    shift = 0.0 if end is None else end - message.t
                t = message.t + shift
                if shift:
                    message = Recorded(
                        t, message.topic, message.qos, message.retain, message.payload
                    )
                end = t
                yield message


class _Window:
    """Counts unacknowledged messages; `acquire` blocks while `_WINDOW` are out."""

    def __init__(self) -> None:
        self.out = 0
        self.error: str | None = None
        self.cond = threading.Condition()

    def acquire(self, stop: threading.Event | None) -> bool:
        with self.cond:
            while self.out >= _WINDOW and self.error is None:
                if stop is not None and stop.is_set():
                    return False
                self.cond.wait(0.1)
            if self.error is not None:
                raise BrokerError(self.error)
            self.out += 1
            return True

    def release(self, *args: Any) -> None:
        with self.cond:
            self.out -= 1
            self.cond.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait until every message is acknowledged; return how many are still out."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.out > 0 and time.monotonic() < deadline:
                self.cond.wait(0.1)
            return self.out


def replay(
    messages: Iterable[Recorded],
    host: str,
    port: int,
    *,
    speed: float | None = 1.0,
    loop: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    total: int | None = None,
    client_id: str = "",
    username: str | None = None,
    password: str | None = None,
    tls: Tls | bool = False,
    console: Console | None = None,
) -> ReplaySummary:
    """Publish `messages` with their topics, QoS and retain flags and their original spacing.

    Parameters
    ----------
    messages
        In publishing order (a `simulators.recording.Recording`, a dataset's list, ...). With
        `loop` it is iterated again after each pass, so it must be re-iterable (an iterator is
        read into a list first).
    host, port
        The broker.
    speed
        Spacing divisor: 2 replays twice as fast. ``None`` or 0: as fast as possible.
    loop
        Start again after the last message, until `stop` or Ctrl-C.
    progress
        Show a progress bar on stderr (on `console`).
    stop
        Set it to end the replay after the current message.
    total
        Messages per pass, for the progress bar (taken from ``len(messages)`` when it has one).
    client_id, username, password, tls
        The MQTT client id (empty: the broker picks one), credentials, TLS (``True``: the
        system's CAs).

    Returns
    -------
    ReplaySummary
        Messages published (all acknowledged), seconds from the first publish to the last
        acknowledgement, and their ratio. Ctrl-C ends the replay like `stop` does.

    Raises
    ------
    BrokerError
        The broker is unreachable, refused the connection, or did not acknowledge every
        message within a minute of the last publish.
    """
    if speed is not None and speed < 0:
        raise ValueError(f"speed {speed} is negative: give a positive factor, or 0 for max")
    if loop and iter(messages) is messages:
        messages = list(messages)
    if total is None and isinstance(messages, Sized):
        total = len(messages)
    broker = Broker.of(host, port, username, password, tls)
    window = _Window()
    client = _connect(broker, client_id, window)
    published = 0
    started = time.monotonic()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
        transient=True,
    )
    try:
        with bar:
            task = bar.add_task("replay", total=None if loop else total, rate="")
            passes = chain.from_iterable(_passes(messages, loop))
            try:
                for message in _paced(passes, speed, stop):
                    if not window.acquire(stop):
                        break
                    _publish(client, message, window)
                    published += 1
                    if published % _PROGRESS_EVERY == 0:
                        rate = published / max(time.monotonic() - started, 1e-9)
                        bar.update(task, completed=published, rate=f"{rate:,.0f}/s")
            except KeyboardInterrupt:
                pass  # Ctrl-C ends the replay; what was published is still acknowledged
            bar.update(task, completed=published)
            left = window.drain(_ACK_TIMEOUT)
        if window.error is not None:
            raise BrokerError(window.error)
        if left:
            raise BrokerError(
                f"{left} of {published} messages not acknowledged by {broker.describe()} "
                f"within {_ACK_TIMEOUT:.0f} s"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    seconds = time.monotonic() - started
    return ReplaySummary(published, seconds, published / seconds if seconds > 0 else 0.0)


def _passes(messages: Iterable[Recorded], loop: bool) -> Iterator[Iterable[Recorded]]:
    yield messages
    while loop:
        yield messages


def _paced(
    messages: Iterable[Recorded], speed: float | None, stop: threading.Event | None
) -> Iterator[Recorded]:
    """The messages, each released when its time (relative to the pass's first) has come.

    A message whose time goes back from the previous one (a new loop pass, or a recording
    rewound by a clock step) restarts the schedule there, so the next ones keep their spacing.
    """
    fast = not speed
    base_t: float | None = None
    base_clock = 0.0
    previous = 0.0
    for message in messages:
        if stop is not None and stop.is_set():
            return
        if not fast:
            assert speed is not None
            if base_t is None or message.t < previous:
                base_t, base_clock = message.t, time.monotonic()
            due = base_clock + (message.t - base_t) / speed
            wait = due - time.monotonic()
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        return
                else:
                    time.sleep(wait)
            previous = message.t
        yield message


def _connect(broker: Broker, client_id: str, window: _Window) -> mqtt.Client:
    connected = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            with window.cond:
                window.error = f"the broker at {broker.describe()} refused the connection: {reason}"
                window.cond.notify_all()
        else:
            set_nodelay(client)
        connected.set()

    client = new_client(broker, Session(client_id))
    client.max_inflight_messages_set(_WINDOW)
    client.max_queued_messages_set(0)  # unbounded: the window bounds it
    client.on_connect = on_connect
    client.on_publish = window.release
    try:
        client.connect(broker.host, broker.port, clean_start=True)
    except OSError as exc:
        raise BrokerError(f"cannot connect to the broker at {broker.describe()}: {exc}") from None
    client.loop_start()
    if not connected.wait(_CONNECT_TIMEOUT) or window.error is not None:
        client.disconnect()
        client.loop_stop()
        raise BrokerError(
            window.error or f"no CONNACK from {broker.describe()} within {_CONNECT_TIMEOUT:.0f} s"
        )
    return client


def _publish(client: mqtt.Client, message: Recorded, window: _Window) -> None:
    info = client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
    # NO_CONN: paho keeps a QoS 1/2 message and sends it after the reconnect. A QoS 0 one is
    # dropped, as it would be from a sensor, and will get no on_publish: release it here.
    if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and message.qos == 0:
        window.release()
    elif info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
        window.release()
        raise BrokerError(f"publish to {message.topic!r} failed: {mqtt.error_string(info.rc)}")
