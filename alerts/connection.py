"""The pipeline's second MQTT connection: alerts publish through it and receive commands on it.

The subscriber's connection is driven by its own batching loop and acks only after the
durable commit; health, reroute advice, alerts and command replies must not wait behind that,
so they get a connection of their own, client id ``<mqtt.client_id>-alerts``, with the same
broker, TLS and credentials. paho's network thread (``loop_start``) drives it and reconnects
forever with exponential backoff; an absent broker is logged, never raised.

Delivery, as paho 2.x does it (read from paho-mqtt 2.2):

- ``publish`` hands a QoS 1 message to paho and returns. While disconnected paho keeps the
  message (``MQTT_ERR_NO_CONN``) and sends it after the next CONNACK, so a publish is never
  lost to a short outage; at most ``_MAX_QUEUED`` messages wait, beyond that they are dropped
  with a warning (the health map is republished whole on every connect anyway).
- ``publish_confirmed`` waits for the PUBACK. It is at least once: a message whose PUBACK did
  not come in time stays in paho's queue and may still arrive after a reconnect, so its
  consumers deduplicate (alerts carry their ``id``).
- Commands arrive on ``subscriptions`` at QoS 1 with a persistent session (MQTT 5
  ``clean_start=False`` and ``mqtt.session_expiry``; 3.1.1 ``clean_session=False``), so commands
  sent while the pipeline is down are delivered when it is back. paho acknowledges each one
  after ``on_message`` returns (its automatic ack comes after the callback): a process that
  dies while handling a command gets it again. A handler that raises is logged and its
  message acknowledged, so one bad command cannot come back forever.

The connection has a retained status of its own, ``<prefix>/status/<client_id>-alerts``:
``online`` on each connect, ``offline`` on `MqttPublisher.close` or, as the last will, when the
connection dies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from alerts.base import ALERTS_SUFFIX
from alerts.errors import DeliveryError
from common import mqtt as transport
from ingest import mqttclient
from ingest.logthrottle import ThrottledLog
from ingest.settings import MqttSettings

log = logging.getLogger(__name__)

_SUCCESS = MQTTErrorCode.MQTT_ERR_SUCCESS
# Messages paho may hold for a broker that is away (in flight and waiting). 100,000 health or
# alert messages of ~300 bytes are ~30 MB; an hour of a large fleet's status changes.
_MAX_QUEUED = 100_000
# Budget (s) for the retained "offline" status to be acknowledged on a clean close; the same
# as the subscriber's goodbye, so a SIGTERM still ends well within 10 s.
_GOODBYE_SECONDS = 2.0
# Repeated warnings (reconnects, full queue) are logged at most once per this many seconds,
# as the subscriber's are.
_LOG_INTERVAL = 10.0


class MqttPublisher:
    """The alerts' MQTT connection: publishes health, reroute advice and alerts, receives commands.

    Implements `alerts.base.Publisher`. Nothing is sent before `start`; after `close` the
    publisher is done (build a new one to connect again: with the same settings it resumes
    the same session, and commands queued meanwhile arrive).

    Parameters
    ----------
    settings
        The pipeline's MQTT settings (broker, TLS, credentials, ``client_id``, ``prefix``,
        ``session_expiry``, ``reconnect_min``/``reconnect_max``).
    subscriptions
        Topic filters to receive at QoS 1; subscribed again on every connect, so a broker
        that lost the session (a restart without persistence) still delivers.
    on_message
        Called as ``on_message(topic, payload)`` on paho's thread for each message received;
        it must lock what it shares and must not call `publish_confirmed`.
    on_connect
        Called on paho's thread after each successful connect, once the subscriptions are
        requested (the alerts republish the retained health map then).
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[str, bytes], None] | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = settings.client_id + ALERTS_SUFFIX
        self.status_topic = f"{settings.prefix}/status/{self.client_id}"
        self.subscriptions = tuple(subscriptions)
        self._handle_message = on_message
        self._handle_connect = on_connect
        self._log = ThrottledLog(log, interval=_LOG_INTERVAL)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        # paho's network thread, known from its first callback: publish_confirmed cannot wait
        # for a PUBACK there (that thread is the one that would read it).
        self._loop_thread: int | None = None
        # PUBACKs with a failure reason code, by message id; read by publish_confirmed.
        self._pubacks = transport.Pubacks()
        self._broker = settings.broker()
        self._session = transport.Session(
            self.client_id,
            settings.protocol,
            settings.keepalive,
            persistent=True,
            session_expiry=settings.session_expiry,
        )
        client = transport.new_client(self._broker, self._session)
        will = mqttclient.status_payload(self.client_id, "offline")
        client.will_set(self.status_topic, will, qos=1, retain=True)
        client.max_queued_messages_set(_MAX_QUEUED)
        transport.set_reconnect_backoff(client, settings.reconnect_min, settings.reconnect_max)
        # No paho logger: what it reports at ERROR is an exception in a callback (ours catch
        # their own) and, after each clean disconnect, a spurious "Client is not connected"
        # from its thread's last turn. Connection trouble is logged by the callbacks below.
        transport.bind(
            client,
            connected=self._on_connect,
            subscribed=self._on_subscribe,
            published=self._on_publish,
            disconnected=self._on_disconnect,
            connect_failed=self._on_connect_fail,
        )
        client.on_message = self._on_message
        self._client = client

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it is up now."""
        return self._client.is_connected()

    def start(self) -> None:
        """Connect in the background and keep reconnecting; returns at once, never raises.

        A second call does nothing; a closed publisher stays closed.
        """
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        transport.connect(self._client, self._broker, self._session, background=True)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 publish and return; problems are logged, never raised.

        While disconnected the message waits in paho and goes out after the reconnect.
        """
        if self._closed:
            log.warning("publisher closed: not publishing to %s", topic)
            return
        try:
            info = self._client.publish(topic, payload, qos=1, retain=retain)
        except (ValueError, TypeError) as exc:  # a wildcard in the topic, a payload too large
            self._log.error(f"publish {topic}", "cannot publish to %s: %s", topic, exc)
            return
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self._log.warning(
                "queue full",
                "dropped a message to %s: %d messages already wait for the broker %s:%d",
                topic,
                _MAX_QUEUED,
                self.settings.host,
                self.settings.port,
            )
        elif info.rc not in (_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._log.warning(
                f"publish {topic}", "publish to %s failed: %s", topic, mqtt.error_string(info.rc)
            )

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        """Publish at QoS 1 and wait up to `timeout` seconds for the broker's PUBACK.

        Raises
        ------
        DeliveryError
            Retryable when not connected or no PUBACK came in time (the message may still be
            delivered later: at least once); not retryable when the broker refused it (not
            authorized), the topic or payload cannot be published, or when called on paho's
            thread (from ``on_message`` or ``on_connect``; use `publish` there).
        """
        if threading.get_ident() == self._loop_thread:
            raise DeliveryError(
                f"publish_confirmed to {topic} called on the MQTT thread, where no PUBACK "
                "can be read: use publish() in on_message and on_connect",
                retryable=False,
            )
        if not self.connected:
            raise DeliveryError(
                f"not connected to the MQTT broker {self.settings.host}:{self.settings.port}: "
                f"{topic} not published",
                retryable=True,
            )
        try:
            transport.publish_confirmed(
                self._client,
                self._pubacks,
                topic,
                payload,
                timeout=timeout,
                broker=self._broker.describe(),
            )
        except transport.PublishError as exc:
            raise DeliveryError(str(exc), retryable=exc.retryable) from None

    def close(self) -> None:
        """Say offline, disconnect and stop paho's thread; a second call does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.connected:
            payload = mqttclient.status_payload(self.client_id, "offline")
            info = self._client.publish(self.status_topic, payload, qos=1, retain=True)
            if info.rc == _SUCCESS and threading.get_ident() != self._loop_thread:
                # RuntimeError: the connection went meanwhile, and the will says offline.
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(_GOODBYE_SECONDS)
        self._client.disconnect()
        self._client.loop_stop()
        if threading.get_ident() != self._loop_thread:  # paho's thread ends after this call
            transport.release(self._client)

    # ---- paho callbacks (on paho's thread) ----

    def _on_connect(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        self._loop_thread = threading.get_ident()
        s = self.settings
        if reason_code.is_failure:
            self._log.error(
                "refused",
                "broker %s:%d refused the alerts connection %s: %s "
                "(check username, password and client_id)",
                s.host,
                s.port,
                self.client_id,
                reason_code,
            )
            return
        log.info(
            "alerts connected to %s:%d as %s (session present: %s)",
            s.host,
            s.port,
            self.client_id,
            flags.session_present,
        )
        for subscription in self.subscriptions:
            # Every time, on 3.1.1 too: the list may have changed since the session began.
            durable = transport.Subscription.durable(subscription)
            result = transport.subscribe(self._client, [durable], s.protocol)
            if result != _SUCCESS:
                log.error("subscribe to %s failed: %s", subscription, mqtt.error_string(result))
        self.publish(
            self.status_topic, mqttclient.status_payload(self.client_id, "online"), retain=True
        )
        if self._handle_connect is not None:
            try:
                self._handle_connect()
            except Exception:
                log.exception("the on_connect handler of the alerts connection failed")

    def _on_connect_fail(self) -> None:
        self._log.warning(
            "connect",
            "no connection to the MQTT broker %s:%d for the alerts; retrying with backoff",
            self.settings.host,
            self.settings.port,
        )

    def _on_disconnect(self, reason_code: ReasonCode) -> None:
        if self._closed:
            log.info("alerts connection closed")
        else:
            self._log.warning(
                "disconnect", "alerts connection to the broker lost (%s); reconnecting", reason_code
            )

    def _on_subscribe(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        refused = transport.refusal(reason_codes)
        if refused is not None:
            log.error(
                "broker refused a subscription of the alerts connection (%s): %s "
                "(check the ACL); commands will not arrive",
                ", ".join(self.subscriptions),
                refused,
            )

    def _on_publish(self, mid: int, reason_code: ReasonCode) -> None:
        # Runs under paho's message lock, before the message counts as published: no lock
        # of ours (publish_confirmed holds none while calling paho).
        self._pubacks.record(mid, reason_code)
        if reason_code.is_failure:
            self._log.warning(
                "refused publish", "the broker refused a publish (mid %d): %s", mid, reason_code
            )

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._handle_message is None:
            return
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers should refuse such topics
            self._log.warning("bad topic", "ignored a message on a topic that is not UTF-8")
            return
        try:
            self._handle_message(topic, bytes(msg.payload))
        except Exception:
            log.exception("handling a message on %s failed; it is acknowledged and dropped", topic)
