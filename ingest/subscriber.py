"""The MQTT subscriber: QoS 1, persistent session, manual acks after the durable commit.

One thread does everything: it drives paho's network loop itself, collects messages while the
socket has more to give (up to ``batch_max`` or ``linger`` seconds), then has the pipeline
decode, score and commit them in one transaction and acks them in arrival order. While the
store refuses commits (spool full, disk trouble) it holds the batch and its acks, keeps the
connection alive and retries: the broker's in-flight limit then stops the flow, and nothing
is dropped. Acks are sent only on the connection that received the message; after a
reconnect the broker redelivers, and idempotent writes make that harmless.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from datetime import UTC, datetime
from typing import cast

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.backoff import backoff
from ingest.deadletters import DeadLetter
from ingest.errors import StoreError
from ingest.logthrottle import ThrottledLog
from ingest.pipeline import IngestPipeline, Message, PreparedBatch
from ingest.settings import IngestSettings, MqttSettings
from ingest.topic import TopicTemplate

log = logging.getLogger(__name__)

# Delay bounds (s) between commit retries while the store refuses writes.
_RETRY_COMMIT = (0.1, 5.0)
# A PUBACK with reason "success" and no properties, the same in MQTT 3.1.1 and 5: type 0x40,
# remaining length 2, the packet identifier.
_PUBACK = struct.Struct("!BBH")
# How long a graceful stop waits for the last acks and the offline status to be sent.
_GOODBYE_SECONDS = 3.0


class Subscriber:
    """Receives telemetry, hands batches to the pipeline, acks what it committed.

    Parameters
    ----------
    mqtt_settings
        Broker, credentials, session and topic template.
    ingest_settings
        Batching limits.
    pipeline
        Decodes, processes and commits.
    """

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        pipeline: IngestPipeline,
    ) -> None:
        self.settings = mqtt_settings
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.template = TopicTemplate.parse(mqtt_settings.topic)
        self.subscription = self.template.subscription
        if mqtt_settings.share_group:
            self.subscription = f"$share/{mqtt_settings.share_group}/{self.subscription}"
        self.status_topic = f"{mqtt_settings.prefix}/status/{mqtt_settings.client_id}"
        self.deadletter_topic = f"{mqtt_settings.prefix}/deadletter"
        # A batch never needs to exceed what the broker may have in flight to us.
        self._batch_max = min(ingest_settings.batch_max, mqtt_settings.receive_maximum)
        self._linger_ns = int(ingest_settings.linger * 1e9)
        self._publish_deadletters = ingest_settings.publish_deadletters
        self._pending: list[Message] = []
        self._held: PreparedBatch | None = None
        self._held_failures = 0
        self._retry_at = 0.0
        self._session = 0
        self._ever_connected = False
        self.connected = False
        self.subscribed = False
        self._log = ThrottledLog(log, interval=10.0)
        self.client = self._build_client()
        if self._publish_deadletters:
            pipeline.on_rejected = self._republish

    def _build_client(self) -> mqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if s.username is not None:
            password = s.password.get_secret_value() if s.password else None
            client.username_pw_set(s.username, password)
        if s.tls:
            client.tls_set(
                ca_certs=str(s.ca_file) if s.ca_file else None,
                certfile=str(s.cert_file) if s.cert_file else None,
                keyfile=str(s.key_file) if s.key_file else None,
            )
        client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def backpressure(self) -> bool:
        """True while a batch waits for the store and its acks are held back."""
        return self._held is not None

    # ---- paho callbacks (run inside client.loop, on this thread) ----

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._log.error(
                "connect",
                "broker %s:%d refused the connection: %s",
                self.settings.host,
                self.settings.port,
                reason_code,
            )
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # QoS 1 pub/sub through mosquitto: ~560 msg/s without it, ~7,000 with it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._session += 1
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        self.metrics.mqtt_connects.inc()
        log.info(
            "connected to %s:%d (session present: %s), subscribing to %s",
            self.settings.host,
            self.settings.port,
            flags.session_present,
            self.subscription,
        )
        # Subscribe on every connect: a broker that lost the session would send nothing.
        result, _ = client.subscribe(self.subscription, qos=1)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("subscribe to %s failed: %s", self.subscription, mqtt.error_string(result))
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        self.subscribed = not refused
        if refused:
            log.error(
                "broker refused the subscription to %s: %s (check the ACL)",
                self.subscription,
                refused[0],
            )
        elif reason_codes and reason_codes[0].value < 1:
            log.warning("broker granted only QoS 0 on %s: readings may be lost", self.subscription)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("disconnected from the broker: %s", reason_code)
        else:
            log.info("disconnected from the broker")
        self.connected = False
        self.subscribed = False
        self.metrics.mqtt_connected.set(0)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers should refuse such topics; keep what we can read
            topic = msg._topic.decode("utf-8", "replace")
        payload = cast(bytes, msg.payload)
        self._pending.append(
            Message(topic, payload, time.time_ns(), msg.mid, msg.qos, self._session)
        )

    # ---- the loop ----

    def run(self, stop: threading.Event) -> None:
        """Receive and commit until `stop` is set, then finish the batch in hand and leave."""
        failures = 0
        while not stop.is_set():
            if not self.connected and not self._connect(stop):
                failures += 1
                delay = backoff(failures, self.settings.reconnect_min, self.settings.reconnect_max)
                self._log.warning(
                    "reconnect",
                    "broker %s:%d unreachable, retrying in %.1f s",
                    self.settings.host,
                    self.settings.port,
                    delay,
                )
                stop.wait(delay)
                continue
            before = len(self._pending)
            rc = self.client.loop(self._timeout())
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and len(self._pending) > before:
                rc = self._read_burst()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._lost(rc)
                continue
            if self.connected:
                failures = 0
            self._step(grew=len(self._pending) > before)
        self._finish()

    def _read_burst(self) -> MQTTErrorCode:
        """Read on while messages keep coming, without a select() per message.

        ``loop()`` selects before every packet; once one message arrived, more are usually
        buffered, and ``loop_read`` (paho's API for external event loops) takes them directly.
        The burst ends at the first read that yields no message, or at a full batch.
        """
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while len(self._pending) < self._batch_max:
            count = len(self._pending)
            rc = self.client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or len(self._pending) == count:
                break
        return rc

    def _timeout(self) -> float:
        if self._held is not None:
            return max(0.0, min(1.0, self._retry_at - time.monotonic()))
        return 0.0 if self._pending else 1.0

    def _step(self, *, grew: bool) -> None:
        """Commit when the socket ran dry, the batch is full, or it waited `linger`."""
        if self._held is not None:
            if time.monotonic() >= self._retry_at:
                self._commit(self._held)
            return
        pending = self._pending
        if pending and (
            not grew
            or len(pending) >= self._batch_max
            or time.time_ns() - pending[0].arrival_ns >= self._linger_ns
        ):
            self._pending = []
            self._commit(self.pipeline.prepare(pending))

    def _commit(self, prepared: PreparedBatch) -> bool:
        try:
            self.pipeline.commit(prepared)
        except StoreError as exc:
            self._held = prepared
            self._held_failures += 1
            delay = backoff(self._held_failures, *_RETRY_COMMIT)
            self._retry_at = time.monotonic() + delay
            self.metrics.store_errors.inc()
            self.metrics.backpressure.set(1)
            self._log.warning(
                "commit", "holding %d messages unacked: %s", len(prepared.messages), exc
            )
            return False
        if self._held is not None:
            log.info("store accepts writes again; acking %d held messages", len(prepared.messages))
            self._held = None
            self._held_failures = 0
            self.metrics.backpressure.set(0)
        self._ack(prepared.messages)
        return True

    def _ack(self, messages: list[Message]) -> None:
        if not self.connected:
            return
        session = self._session
        # An ack belongs to the connection that delivered the message; older ones come
        # again after the reconnect and are stored idempotently.
        mids = [m.mid for m in messages if m.session == session and m.qos == 1]
        if not mids:
            return
        sock = self.client.socket()
        if isinstance(sock, socket.socket) and not self.client.want_write():
            # paho sends each PUBACK with two syscalls and its own bookkeeping; a QoS 1
            # PUBACK holds no client state, so a batch goes out as one write (when paho has
            # nothing half-written on the socket).
            try:
                sock.settimeout(_GOODBYE_SECONDS)
                sock.sendall(b"".join([_PUBACK.pack(0x40, 2, mid) for mid in mids]))
                sock.setblocking(False)
            except OSError as exc:
                # A torn write would corrupt the stream: drop the connection; the broker
                # redelivers what was not acked.
                log.warning("sending acks failed (%s): reconnecting", exc)
                sock.close()
                self._lost(MQTTErrorCode.MQTT_ERR_CONN_LOST)
                return
        else:
            for mid in mids:
                self.client.ack(mid, 1)
        self.metrics.acks.inc(len(mids))

    def _connect(self, stop: threading.Event) -> bool:
        s = self.settings
        try:
            if self._ever_connected:
                rc = self.client.reconnect()
            else:
                properties = None
                if s.protocol == "5":
                    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                    properties.SessionExpiryInterval = s.session_expiry
                    properties.ReceiveMaximum = s.receive_maximum
                    rc = self.client.connect(
                        s.host, s.port, s.keepalive, clean_start=False, properties=properties
                    )
                else:
                    rc = self.client.connect(s.host, s.port, s.keepalive)
                self._ever_connected = True
        except (OSError, ssl.SSLError) as exc:
            self._log.warning("connect-error", "cannot reach broker %s:%d: %s", s.host, s.port, exc)
            return False
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        # Wait for CONNACK so that a refusal (bad credentials) is seen and backed off from.
        deadline = time.monotonic() + 10
        while not self.connected and not stop.is_set() and time.monotonic() < deadline:
            if self.client.loop(0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return False
        return self.connected

    def _lost(self, rc: MQTTErrorCode) -> None:
        if self.connected:
            log.warning("connection lost: %s", mqtt.error_string(rc))
        self.connected = False
        self.subscribed = False
        self.metrics.mqtt_connected.set(0)

    def _finish(self) -> None:
        """Commit what was received, ack it, say offline and disconnect cleanly."""
        if self._held is not None:
            self._commit(self._held)
        elif self._pending:
            pending, self._pending = self._pending, []
            self._commit(self.pipeline.prepare(pending))
        if not self.connected:
            return
        info = self.client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
        deadline = time.monotonic() + _GOODBYE_SECONDS
        while not info.is_published() and self.connected and time.monotonic() < deadline:
            self.client.loop(0.05)
        self.client.disconnect()
        self.connected = False
        self.metrics.mqtt_connected.set(0)

    def _status(self, status: str) -> bytes:
        return orjson.dumps(
            {
                "client_id": self.settings.client_id,
                "status": status,
                "since": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
        )

    def _republish(self, letter: DeadLetter) -> None:
        self.client.publish(self.deadletter_topic, orjson.dumps(letter.to_json()), qos=1)
