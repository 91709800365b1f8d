"""The recorder: subscribe to a topic filter and write every message to a recording file.

It is a plain MQTT 5 subscriber (paho 2.x, clean start, QoS 1 by default) that writes each
message as it arrives, with its arrival time, topic, QoS, retain flag and exact payload (see
`simulators.recording`). The subscription asks for *retain as published*, so a message that
was published retained is recorded as retained, and the retained messages the broker holds
when the recorder subscribes come first.

A message is recorded at the QoS it was delivered with: the lower of its publisher's and the
subscription's (``qos``). What arrives is flushed to the file every `_FLUSH_SECONDS`, so
Ctrl-C (which ends the recording normally) or a crash loses at most that much.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from common.mqtt import Broker, Session, Subscription, Tls, bind, connect, new_client, subscribe
from simulators.recording import BrokerError, Recorded, RecordingWriter

log = logging.getLogger(__name__)

# At most this much of what arrived is lost when the recorder is killed (s).
_FLUSH_SECONDS = 0.5
# Seconds to wait for the broker's CONNACK and SUBACK before giving up.
_CONNECT_TIMEOUT = 10.0


class _Session:
    """The subscriber's state, shared between paho's thread and the caller's."""

    def __init__(
        self,
        client: mqtt.Client,
        writer: RecordingWriter,
        topic_filter: str,
        qos: int,
        count: int | None,
    ) -> None:
        self.client = client
        self.writer = writer
        self.topic_filter = topic_filter
        self.qos = qos
        self.count = count
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.error: str | None = None

    def on_connect(self, flags: mqtt.ConnectFlags, reason: ReasonCode) -> None:
        if reason.is_failure:
            self.fail(f"the broker refused the connection: {reason}")
            return
        # Subscribe on every connect, or a reconnect silently stops the flow (docs/design.md §12).
        subscription = Subscription(self.topic_filter, self.qos, retain_as_published=True)
        rc = subscribe(self.client, [subscription], "5")
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.fail(f"subscribe to {self.topic_filter!r} failed: {mqtt.error_string(rc)}")

    def on_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        if any(r.is_failure for r in reasons):
            self.fail(f"the broker refused the subscription to {self.topic_filter!r}: {reasons}")
            return
        self.subscribed.set()

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrived = time.time()
        with self.lock:
            if self.done.is_set():
                return
            recorded = Recorded(
                arrived, message.topic, message.qos, bool(message.retain), bytes(message.payload)
            )
            self.writer.write(recorded)
            if self.count is not None and self.writer.written >= self.count:
                self.done.set()

    def fail(self, problem: str) -> None:
        self.error = problem
        self.done.set()


def record(
    host: str,
    port: int,
    topic_filter: str = "plant/#",
    *,
    out: Path,
    count: int | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    qos: int = 1,
    client_id: str = "",
    username: str | None = None,
    password: str | None = None,
    tls: Tls | bool = False,
) -> int:
    """Record the messages on `topic_filter` to `out` until a bound is reached; return how many.

    Stops after `count` messages, after `duration` seconds, when `stop` is set, or on Ctrl-C,
    whichever comes first (with none of them, only `stop` or Ctrl-C end it). The file is
    complete (a closed gzip stream) in every case.

    Parameters
    ----------
    host, port
        The broker.
    topic_filter
        What to subscribe to (wildcards allowed).
    out
        The recording file to write (``FILE.jsonl.gz``); replaced if it exists.
    count, duration, stop
        The bounds.
    ready
        Set once the subscription is acknowledged: messages published after that are recorded.
    qos
        Subscription QoS: the highest QoS messages are delivered, and recorded, with.
    client_id
        MQTT client id; empty lets the broker choose one.
    username, password, tls
        Credentials, and TLS (``True``: verify the broker with the system's CAs).

    Raises
    ------
    BrokerError
        The broker is unreachable or refused the connection or the subscription.
    RecordingError
        `out` cannot be written.
    """
    broker = Broker.of(host, port, username, password, tls)
    with RecordingWriter(out) as writer:
        options = Session(client_id)
        client = new_client(broker, options)
        session = _Session(client, writer, topic_filter, qos, count)
        bind(client, connected=session.on_connect, subscribed=session.on_subscribe)
        client.on_message = session.on_message
        try:
            connect(client, broker, options)
        except OSError as exc:
            raise BrokerError(
                f"cannot connect to the broker at {broker.describe()}: {exc}"
            ) from None
        client.loop_start()
        try:
            _wait_subscribed(session, broker)
            if ready is not None:
                ready.set()
            deadline = None if duration is None else time.monotonic() + duration
            _run(session, stop, deadline)
        except KeyboardInterrupt:
            log.info("recording stopped by Ctrl-C")
        finally:
            with session.lock:
                session.done.set()  # no more writes from paho's thread
            client.disconnect()
            client.loop_stop()
        if session.error is not None:
            raise BrokerError(session.error)
        return writer.written


def _wait_subscribed(session: _Session, broker: Broker) -> None:
    deadline = time.monotonic() + _CONNECT_TIMEOUT
    while not session.subscribed.is_set() and not session.done.is_set():
        if time.monotonic() > deadline:
            raise BrokerError(
                f"no CONNACK/SUBACK from the broker at {broker.describe()} "
                f"within {_CONNECT_TIMEOUT:.0f} s"
            )
        session.subscribed.wait(0.05)
    if session.error is not None:
        raise BrokerError(session.error)


def _run(session: _Session, stop: threading.Event | None, deadline: float | None) -> None:
    while not session.done.is_set():
        if stop is not None and stop.is_set():
            return
        wait = _FLUSH_SECONDS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait = min(wait, left)
        session.done.wait(wait)
        with session.lock:
            session.writer.flush()
