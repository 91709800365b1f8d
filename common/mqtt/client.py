"""Building and driving a paho 2.x client: the one place meshwatch makes an MQTT connection.

`new_client` gives a client its credentials, TLS and session; `connect` opens it with the
session's options; `bind` hangs short hooks on paho's callbacks and turns TCP_NODELAY on at
every connect; `subscribe` (called from the ``connected`` hook, so that a reconnect
resubscribes) sends one SUBSCRIBE for a list of `Subscription`. Reconnecting is either paho's
thread (`set_reconnect_backoff`) or the caller's own loop with `common.backoff.backoff`.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from common.mqtt.options import Broker, Protocol, Session

# A PUBACK with reason "success" and no properties, the same in MQTT 3.1.1 and 5: type 0x40,
# remaining length 2, the packet identifier.
_PUBACK = struct.Struct("!BBH")

#: ``connected(flags, reason_code)``, after each CONNACK (refusals included).
Connected = Callable[[mqtt.ConnectFlags, ReasonCode], None]
#: ``subscribed(mid, reason_codes)``, one reason code per topic filter of the SUBSCRIBE.
Subscribed = Callable[[int, list[ReasonCode]], None]
#: ``published(mid, reason_code)``, at each PUBACK (QoS 1) or once sent (QoS 0).
Published = Callable[[int, ReasonCode], None]
#: ``disconnected(reason_code)``, when a connection ends, cleanly or not.
Disconnected = Callable[[ReasonCode], None]


def new_client(
    broker: Broker, session: Session, *, manual_ack: bool = False, reconnect: bool = True
) -> mqtt.Client:
    """A paho 2.x client with the broker's credentials and TLS and the session's identity.

    Parameters
    ----------
    broker
        Credentials and TLS files (the address is used by `connect`).
    session
        Client id, protocol and persistence (3.1.1 ``clean_session``; MQTT 5 sets
        ``clean_start`` when connecting, and paho refuses ``clean_session`` with it).
    manual_ack
        Acknowledge QoS 1 messages only with ``client.ack`` (after a durable write).
    reconnect
        Let paho's thread (``loop_start``/``loop_forever``) reconnect; off when the caller
        drives the reconnects itself.
    """
    v5 = session.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=session.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else not session.persistent,
        reconnect_on_failure=reconnect,
        manual_ack=manual_ack,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls is not None:
        files = (broker.tls.ca_file, broker.tls.cert_file, broker.tls.key_file)
        ca, cert, key = (str(f) if f else None for f in files)
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    return client


def connect_properties(session: Session) -> Properties | None:
    """The CONNECT properties of an MQTT 5 session: expiry and Receive Maximum, if persistent.

    Examples
    --------
    >>> connect_properties(Session("a", persistent=True, session_expiry=60)).SessionExpiryInterval
    60
    >>> connect_properties(Session("a")) is None
    True
    """
    if session.protocol != "5" or not session.persistent:
        return None
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session.session_expiry
    if session.receive_maximum is not None:
        properties.ReceiveMaximum = session.receive_maximum
    return properties


def connect(
    client: mqtt.Client, broker: Broker, session: Session, *, background: bool = False
) -> MQTTErrorCode:
    """Open the first connection (``background``: from paho's thread, once it is started).

    Later connections use ``client.reconnect()`` or paho's own, with the same options. A
    persistent MQTT 5 session connects with ``clean_start=False`` every time: mosquitto
    2.0.11 persists only sessions whose latest CONNECT had it (a clean start with an expiry
    interval lived until the broker restarted, then was gone with its queue). A transient one
    starts clean every time, and without an expiry its session ends with the connection.
    Raises what paho raises: `OSError` (`ssl.SSLError` included) or `ValueError`.
    """
    host, port, keepalive = broker.host, broker.port, session.keepalive
    if session.protocol != "5":
        if background:
            client.connect_async(host, port, keepalive)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return client.connect(host, port, keepalive)
    clean_start = not session.persistent
    properties = connect_properties(session)
    if background:
        client.connect_async(host, port, keepalive, clean_start=clean_start, properties=properties)
        return MQTTErrorCode.MQTT_ERR_SUCCESS
    return client.connect(host, port, keepalive, clean_start=clean_start, properties=properties)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter with its QoS and, on MQTT 5, its retain options.

    Examples
    --------
    >>> Subscription.durable("plant/+/+/telemetry").options().retainHandling
    1
    """

    topic_filter: str
    qos: int = 1
    retain_handling: int = SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
    retain_as_published: bool = False

    @classmethod
    def durable(cls, topic_filter: str) -> Subscription:
        """QoS 1 made on every connect: retained messages come only with a new subscription.

        Subscribing again on every connect guards against a broker that lost the session,
        and retain handling 1 keeps that from replaying retained messages each time.
        """
        return cls(topic_filter, 1, SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)

    def options(self) -> SubscribeOptions:
        """The MQTT 5 subscription options."""
        return SubscribeOptions(
            qos=self.qos,
            retainAsPublished=self.retain_as_published,
            retainHandling=self.retain_handling,
        )


def subscribe(
    client: mqtt.Client, subscriptions: Sequence[Subscription], protocol: Protocol
) -> MQTTErrorCode:
    """Send one SUBSCRIBE for all of `subscriptions` (3.1.1 carries only their QoS)."""
    if protocol == "5":
        result, _ = client.subscribe([(s.topic_filter, s.options()) for s in subscriptions])
    else:
        result, _ = client.subscribe([(s.topic_filter, s.qos) for s in subscriptions])
    return result


def set_nodelay(client: mqtt.Client) -> None:
    """Turn off Nagle: QoS 1 pub/sub through mosquitto went from ~560 to ~7,000 msg/s here."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_reconnect_backoff(client: mqtt.Client, low: float, high: float) -> None:
    """Let paho's thread reconnect after `low` seconds, doubling up to `high`.

    paho waits whole seconds between reconnects, so both round up (to at least 1 s).
    """
    first = max(1, math.ceil(low))
    client.reconnect_delay_set(first, max(first, math.ceil(high)))


def bind(
    client: mqtt.Client,
    *,
    connected: Connected | None = None,
    subscribed: Subscribed | None = None,
    published: Published | None = None,
    disconnected: Disconnected | None = None,
    connect_failed: Callable[[], None] | None = None,
) -> None:
    """Hang hooks on paho's callbacks; every accepted connection also gets TCP_NODELAY.

    Subscribe in ``connected`` (when its reason code is a success), or a reconnect silently
    stops the flow. ``on_message`` is set on the client directly: it is the hot path.
    """

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            set_nodelay(client)
        if connected is not None:
            connected(flags, reason_code)

    client.on_connect = on_connect
    if subscribed is not None:
        on_subscribe = subscribed
        client.on_subscribe = lambda _c, _u, mid, codes, _p: on_subscribe(mid, codes)
    if published is not None:
        on_publish = published
        client.on_publish = lambda _c, _u, mid, code, _p: on_publish(mid, code)
    if disconnected is not None:
        on_disconnect = disconnected
        client.on_disconnect = lambda _c, _u, _f, code, _p: on_disconnect(code)
    if connect_failed is not None:
        on_connect_fail = connect_failed
        client.on_connect_fail = lambda _c, _u: on_connect_fail()


def refusal(reason_codes: Sequence[ReasonCode]) -> ReasonCode | None:
    """The first failure among a SUBACK's reason codes, or None when all were granted."""
    return next((code for code in reason_codes if code.is_failure), None)


def send_pubacks(client: mqtt.Client, mids: list[int], timeout: float) -> bool:
    """Ack QoS 1 messages with one socket write; False when paho must send them itself.

    paho sends each PUBACK with two syscalls and its own bookkeeping, yet a QoS 1 PUBACK holds
    no client state. The batch is written directly only when paho has nothing half-written
    on the socket, so packets cannot interleave. Raises `OSError` when the write fails: the
    connection must then be dropped (a torn write would corrupt the stream).
    """
    sock = client.socket()
    if not isinstance(sock, socket.socket) or client.want_write():
        return False
    sock.settimeout(timeout)
    try:
        sock.sendall(b"".join([_PUBACK.pack(0x40, 2, mid) for mid in mids]))
    finally:
        sock.setblocking(False)
    return True


def release(client: mqtt.Client) -> None:
    """Close a finished client's sockets now, the socket pair of its loop included.

    paho closes the socket pair that ``loop()`` and ``loop_start()`` open only in
    ``__del__``; a client kept in a reference cycle (callbacks bound to its owner, a traceback)
    is then finalized by the garbage collector, possibly after its sockets (a
    ``ResourceWarning``). ``reinitialise()`` is paho's public way to close them: it resets the
    client to a new, unconnected one, without callbacks.
    """
    client.reinitialise()
