"""The MQTT subscriber: QoS 1, persistent session, manual acks after the durable commit.

One thread does everything: it drives paho's network loop itself, collects messages while the
socket has more to give (up to ``batch_max`` or ``linger`` seconds), then has the pipeline
decode, score and commit them in one transaction and acks them in arrival order. While the
store refuses commits (spool full, disk trouble) it holds the batch and its acks, keeps the
connection alive and retries: the broker's in-flight limit then stops the flow, and nothing
is dropped. Acks are sent only on the connection that received the message; after a
reconnect the broker redelivers, and idempotent writes make that harmless.

What it hands batches to is a `BatchSink`: the pipeline itself in a single process, or, with
``meshwatch run --workers N``, the fan-out to the workers (`ingest.fanout.FanOut`). A sink
whose `prepare` only hands the work on (the fan-out) may have ``ahead`` batches prepared
beyond the one being committed: the subscriber reads and hands on the next batch while the
workers commit the last, and commits and acks them in the order it made them. Each batch is
then at most the broker's window (``mqtt.receive_maximum``) divided among them, so that the
broker can send the next while one is out.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from common import mqtt as transport
from common.backoff import backoff
from common.mqtt.bulkread import BulkReader
from ingest import mqttclient
from ingest.deadletters import DeadLetter
from ingest.holding import HeldBatch
from ingest.logthrottle import ThrottledLog
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message
from ingest.settings import IngestSettings, MqttSettings
from ingest.topic import TopicTemplate

log = logging.getLogger(__name__)


class Prepared(Protocol):
    """A batch on its way to the store: the messages its commit lets the subscriber ack."""

    messages: list[Message]


P = TypeVar("P", bound=Prepared)


class BatchSink(Protocol[P]):
    """Where the subscriber's batches go: the pipeline, or the fan-out to workers."""

    metrics: IngestMetrics
    #: Called with each dead letter once stored (the subscriber republishes them).
    on_rejected: Callable[[DeadLetter], None] | None

    def prepare(self, messages: list[Message]) -> P:
        """Decode and process the messages (or hand them on): the batch to commit."""

    def commit(self, prepared: P) -> None:
        """Make the batch durable; `StoreError` (retryable or not) when the store refuses."""

    def tick(self) -> None:
        """Let time act between batches (flushes, deadman, checkpoints)."""


_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
# A connection counts as good (and the reconnect backoff starts over) after this many
# seconds; a connection that flaps (a duplicate client id, say) keeps backing off.
_STABLE_SECONDS = 10.0
# The longest wait for a CONNACK before the attempt counts as failed.
_CONNACK_SECONDS = 10.0
# Budget (s) for a graceful stop after the last commit: acks, the offline status, DISCONNECT.
# With the commit itself this keeps SIGTERM-to-exit well under 10 s.
_GOODBYE_SECONDS = 2.0
# Repeated warnings (reconnects, held commits) are logged at most once per this many seconds.
_LOG_INTERVAL = 10.0
# Processors hear that time passed (deadman checks, notification timers) this often, in s.
_TICK_SECONDS = 1.0
# The longest wait for the socket while idle: how soon `stop` (SIGTERM) is seen, in s. A wait
# of a whole tick made every stop of an idle pipeline take up to a second more.
_IDLE_SECONDS = 0.1


class Subscriber:
    """Receives telemetry, hands batches to the pipeline, acks what it committed.

    Parameters
    ----------
    mqtt_settings
        Broker, credentials, session and topic template.
    ingest_settings
        Batching limits.
    pipeline
        Decodes, processes and commits (`BatchSink`).
    ahead
        Batches handed to `pipeline` and not yet committed while the next is read: 0 for
        the pipeline itself (its `prepare` does the work), 1 for the fan-out to workers.
    """

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        pipeline: BatchSink[Any],
        *,
        ahead: int = 0,
    ) -> None:
        self.settings = mqtt_settings
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.subscription = TopicTemplate.parse(mqtt_settings.topic).subscription
        if mqtt_settings.share_group:
            self.subscription = f"$share/{mqtt_settings.share_group}/{self.subscription}"
        self._own_prefix = mqtt_settings.prefix + "/"
        self.status_topic = f"{mqtt_settings.prefix}/status/{mqtt_settings.client_id}"
        self.deadletter_topic = f"{mqtt_settings.prefix}/deadletter"
        # A batch never needs to exceed its share of what the broker may have in flight to us.
        self._batch_max = max(
            1, min(ingest_settings.batch_max, mqtt_settings.receive_maximum // (ahead + 1))
        )
        self._ahead = ahead
        #: Batches prepared and not yet committed, oldest first.
        self._out: deque[Any] = deque()
        self._linger_ns = int(ingest_settings.linger * 1e9)
        self._pending: list[Message] = []
        self._session = 0
        self._connected_at = 0.0
        self._ticked_at = time.monotonic()
        self._ever_connected = False
        self.connected = False
        self.subscribed = False
        self._log = ThrottledLog(log, interval=_LOG_INTERVAL)
        self._hold = HeldBatch(pipeline, self._ack, self._log)
        self.client = mqttclient.build_client(mqtt_settings, self.status_topic)
        transport.bind(
            self.client,
            connected=self._on_connect,
            subscribed=self._on_subscribe,
            disconnected=self._on_disconnect,
        )
        self.client.on_message = self._on_message
        self._bulk = BulkReader(v5=mqtt_settings.protocol == "5")
        if ingest_settings.publish_deadletters:
            pipeline.on_rejected = self._republish

    @property
    def backpressure(self) -> bool:
        """True while a batch waits for the store and its acks are held back."""
        return self._hold.batch is not None

    # ---- paho callbacks (run inside client.loop, on this thread) ----

    def _on_connect(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        s = self.settings
        if reason_code.is_failure:
            self._log.error(
                "refused",
                "broker %s:%d refused the connection: %s (check username, password and client_id)",
                s.host,
                s.port,
                reason_code,
            )
            return
        self._session += 1
        self._connected_at = time.monotonic()
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        self.metrics.mqtt_connects.inc()
        log.info(
            "connected to %s:%d (session present: %s), subscribing to %s",
            s.host,
            s.port,
            flags.session_present,
            self.subscription,
        )
        # On 3.1.1 a present session keeps the subscription, and subscribing again would
        # replay retained telemetry; MQTT 5 avoids that with retain handling.
        if s.protocol == "5" or not flags.session_present:
            subscription = transport.Subscription.durable(self.subscription)
            result = transport.subscribe(self.client, [subscription], s.protocol)
            if result != _SUCCESS:
                log.error(
                    "subscribe to %s failed: %s", self.subscription, mqtt.error_string(result)
                )
        else:
            self.subscribed = True
        self._publish(self.status_topic, mqttclient.status_payload(s.client_id, "online"), True)

    def _on_subscribe(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        refused = transport.refusal(reason_codes)
        self.subscribed = refused is None
        if refused is not None:
            log.error(
                "broker refused the subscription to %s: %s (check the ACL)",
                self.subscription,
                refused,
            )
        elif reason_codes and reason_codes[0].value < 1:
            log.warning("broker granted only QoS 0 on %s: readings may be lost", self.subscription)

    def _on_disconnect(self, reason_code: ReasonCode) -> None:
        if reason_code.is_failure:
            log.warning("disconnected from the broker: %s", reason_code)
        else:
            log.info("disconnected from the broker")
        self._mark_disconnected()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers should refuse such topics; keep what we can read
            topic = msg._topic.decode("utf-8", "replace")
        self._received(topic, cast(bytes, msg.payload), msg.mid, msg.qos)

    def _received(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        """Keep a message for the batch; our own output is acked and ignored."""
        if topic.startswith(self._own_prefix):
            # Our own output (a template such as {site}/{asset} also matches it): not
            # telemetry, and storing or rejecting it would feed back on itself.
            self.client.ack(mid, qos)
            self.metrics.messages_ignored.inc()
            return
        self._pending.append(Message(topic, payload, time.time_ns(), mid, qos, self._session))

    # ---- the loop ----

    def run(self, stop: threading.Event) -> None:
        """Receive and commit until `stop` is set, then finish the batch in hand and leave.

        Raises `StoreError` when the store refuses a batch for good (``retryable=False``):
        nothing of it is acked, and holding it forever would only hide the fault.
        """
        failures = 0
        while not stop.is_set():
            if not self.connected and not self._connect(stop):
                failures += 1
                delay = backoff(failures, self.settings.reconnect_min, self.settings.reconnect_max)
                self._log.warning(
                    "reconnect",
                    "no connection to the broker %s:%d, retrying in %.1f s",
                    self.settings.host,
                    self.settings.port,
                    delay,
                )
                stop.wait(delay)
                continue
            if self._hold.batch is not None and len(self._pending) >= self._batch_max:
                # Bound memory while the store refuses writes: stop reading (QoS 0 traffic is
                # not limited by the broker's in-flight window) until the held batch is in.
                stop.wait(self._hold.wait())
                self.client.loop_misc()
                self._step(grew=False)
                continue
            before = len(self._pending)
            rc = self.client.loop(self._timeout())
            if rc == _SUCCESS and len(self._pending) > before:
                rc = self._read_burst()
            if rc != _SUCCESS:
                self._lost(rc)
                continue
            if self.connected and time.monotonic() - self._connected_at > _STABLE_SECONDS:
                failures = 0
            self._step(grew=len(self._pending) > before)
            self._tick()
        self._finish()

    def _tick(self) -> None:
        """Tell the pipeline that time passed, when a second did and no batch is held."""
        now = time.monotonic()
        if now - self._ticked_at >= _TICK_SECONDS and self._hold.batch is None:
            self._ticked_at = now
            self.pipeline.tick()

    def _read_burst(self) -> MQTTErrorCode:
        """Read on while messages keep coming, without a select() per message.

        ``loop()`` selects before every packet; once one message arrived, more are usually
        buffered. The bulk reader takes the whole PUBLISH packets at the socket's front many
        at a time; anything else (or a packet not yet whole) is paho's to read, with
        ``loop_read`` (its API for external event loops). The burst ends at the first read
        that yields no message, or at a full batch.
        """
        rc = _SUCCESS
        received = self._received
        while len(self._pending) < self._batch_max:
            count = len(self._pending)
            for p in self._bulk.read(self.client, self._batch_max - count):
                received(p.topic, p.payload, p.mid, p.qos)
            if len(self._pending) > count:
                continue
            rc = self.client.loop_read()
            if rc != _SUCCESS or len(self._pending) == count:
                break
        return rc

    def _timeout(self) -> float:
        if self._hold.batch is not None:
            return min(1.0, self._hold.wait())
        return 0.0 if self._pending or self._out else _IDLE_SECONDS

    def _step(self, *, grew: bool) -> None:
        """Prepare when the socket ran dry, the batch is full, or it waited `linger`; commit.

        While messages keep coming, `ahead` batches stay out; once a read brings none, the
        oldest is committed each round, so the last ones are acked without waiting for more.
        """
        if self._hold.batch is not None:
            self._hold.retry()
            return
        pending = self._pending
        if pending and (
            not grew
            or len(pending) >= self._batch_max
            or time.time_ns() - pending[0].arrival_ns >= self._linger_ns
        ):
            self._pending = []
            self._out.append(self.pipeline.prepare(pending))
        keep = self._ahead if grew else max(0, len(self._out) - 1)
        while len(self._out) > keep and self._hold.batch is None:
            self._hold.commit(self._out.popleft())

    def _ack(self, messages: list[Message]) -> None:
        if not self.connected:
            return
        session = self._session
        # An ack belongs to the connection that delivered the message; older ones come
        # again after the reconnect and are stored idempotently. QoS 0 needs none.
        mids = [m.mid for m in messages if m.session == session and m.qos == 1]
        if not mids:
            return
        try:
            if not transport.send_pubacks(self.client, mids, timeout=_GOODBYE_SECONDS):
                for mid in mids:
                    rc = self.client.ack(mid, 1)
                    if rc != _SUCCESS:
                        log.warning("ack failed: %s", mqtt.error_string(rc))
                        return
        except OSError as exc:
            log.warning("sending acks failed (%s): reconnecting", exc)
            sock = self.client.socket()
            if sock is not None:
                sock.close()
            self._lost(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            return
        self.metrics.acks.inc(len(mids))

    def _connect(self, stop: threading.Event) -> bool:
        s = self.settings
        try:
            if self._ever_connected:
                rc = self.client.reconnect()
            else:
                rc = transport.connect(self.client, s.broker(), mqttclient.session_of(s))
                self._ever_connected = True
        except (OSError, ssl.SSLError) as exc:
            self._log.warning("connect-error", "cannot connect to %s:%d: %s", s.host, s.port, exc)
            return False
        if rc != _SUCCESS:
            return False
        # Wait for CONNACK so that a refusal (bad credentials) is seen and backed off from.
        deadline = time.monotonic() + _CONNACK_SECONDS
        while not self.connected and not stop.is_set() and time.monotonic() < deadline:
            if self.client.loop(0.1) != _SUCCESS:
                return False
        return self.connected

    def _lost(self, rc: MQTTErrorCode) -> None:
        if self.connected:
            log.warning("connection lost: %s", mqtt.error_string(rc))
        self._mark_disconnected()

    def _mark_disconnected(self) -> None:
        self.connected = False
        self.subscribed = False
        self.metrics.mqtt_connected.set(0)

    def _finish(self) -> None:
        """Commit what was received, ack it, say offline and disconnect cleanly."""
        try:
            if self._hold.batch is not None:
                self._hold.retry(force=True)
            if self._pending and self._hold.batch is None:
                pending, self._pending = self._pending, []
                self._out.append(self.pipeline.prepare(pending))
            while self._out and self._hold.batch is None:
                self._hold.commit(self._out.popleft())
        finally:
            if self.connected:
                self._goodbye()

    def _goodbye(self) -> None:
        payload = mqttclient.status_payload(self.settings.client_id, "offline")
        info = self._publish(self.status_topic, payload, True)
        deadline = time.monotonic() + _GOODBYE_SECONDS
        while info is not None and not info.is_published() and self.connected:
            if time.monotonic() > deadline or self.client.loop(0.05) != _SUCCESS:
                break
        self.client.disconnect()
        self._mark_disconnected()

    def _publish(self, topic: str, payload: bytes, retain: bool) -> mqtt.MQTTMessageInfo | None:
        try:
            info = self.client.publish(topic, payload, qos=1, retain=retain)
        except ValueError as exc:  # paho refuses topics with wildcards
            log.error("cannot publish to %s: %s", topic, exc)
            return None
        if info.rc != _SUCCESS:
            self._log.warning(
                f"publish {topic}", "publish to %s failed: %s", topic, mqtt.error_string(info.rc)
            )
        return info

    def _republish(self, letter: DeadLetter) -> None:
        self._publish(self.deadletter_topic, orjson.dumps(letter.to_json()), False)
