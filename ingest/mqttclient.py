"""The paho client as the subscriber needs it: built from settings, fast acks, status payloads.

Kept apart from the subscriber's loop so that the loop reads as the delivery logic alone.
"""

from __future__ import annotations

import logging
import socket
import struct
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from common.timestamps import format_rfc3339
from ingest.settings import MqttSettings

# A PUBACK with reason "success" and no properties, the same in MQTT 3.1.1 and 5: type 0x40,
# remaining length 2, the packet identifier.
_PUBACK = struct.Struct("!BBH")


def build_client(settings: MqttSettings, status_topic: str) -> mqtt.Client:
    """A paho 2.x client with manual acks, credentials, TLS and an "offline" last will."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        # 3.1.1 keeps the session with clean_session=False; MQTT 5 uses clean_start below.
        clean_session=None if v5 else False,
        reconnect_on_failure=False,
        manual_ack=True,
    )
    authenticate(client, settings)
    will = status_payload(settings.client_id, "offline")
    client.will_set(status_topic, will, qos=1, retain=True)
    # paho's own errors (a TLS alert from the broker, a failed socket read) reach the log;
    # its per-packet debug lines stay off unless this logger is set to DEBUG.
    client.enable_logger(logging.getLogger("ingest.paho"))
    return client


def authenticate(client: mqtt.Client, settings: MqttSettings) -> None:
    """Give a client the broker's credentials and TLS files (every connection of meshwatch)."""
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
        )


def connect(client: mqtt.Client, settings: MqttSettings) -> MQTTErrorCode:
    """Open the first connection; later ones use ``client.reconnect()`` with the same options.

    MQTT 5 connects with ``clean_start=False`` every time: mosquitto 2.0.11 persists only
    sessions whose latest CONNECT had it (a clean start with an expiry interval lived until
    the broker restarted, then was gone with its queue).
    """
    if settings.protocol != "5":
        return client.connect(settings.host, settings.port, settings.keepalive)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = settings.session_expiry
    properties.ReceiveMaximum = settings.receive_maximum
    return client.connect(
        settings.host, settings.port, settings.keepalive, clean_start=False, properties=properties
    )


def subscribe(
    client: mqtt.Client, subscription: str, protocol: str
) -> tuple[MQTTErrorCode, int | None]:
    """Subscribe at QoS 1; on MQTT 5 retained messages come only with a new subscription.

    Re-subscribing on every connect guards against a broker that lost the session, and
    retain handling 1 keeps that from replaying retained telemetry each time.
    """
    if protocol == "5":
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        return client.subscribe(subscription, options=options)
    return client.subscribe(subscription, qos=1)


def set_nodelay(client: mqtt.Client) -> None:
    """Turn off Nagle: QoS 1 pub/sub through mosquitto went from ~560 to ~7,000 msg/s here."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


def status_payload(client_id: str, status: str) -> bytes:
    """The retained status message of a pipeline instance.

    Examples
    --------
    >>> sorted(orjson.loads(status_payload("hub-1", "online")).items())[:2]
    [('client_id', 'hub-1'), ('since', ...)]
    """
    return orjson.dumps(
        {"client_id": client_id, "status": status, "since": format_rfc3339(time.time_ns())}
    )
