"""MQTT 5 clients for the benchmark, and the persistent sessions the subscribers drain.

Every client here is paho 2.x on callback API 2 speaking MQTT 5, with TCP_NODELAY on its
socket: `new_client` and `connect` are the one place where that is set up. A `Probe` is a
short-lived control client driven on the calling thread; it creates a subscriber's session
before a backlog is published (`create_session`) and, after a drain, counts what the session
still holds and deletes it (`leftover_and_drop`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .workloads import TOPIC_FILTER

#: Session expiry of the subscribers' sessions: far longer than any publish-then-drain cycle.
SESSION_EXPIRY_S = 3600
#: Receive Maximum of the bare subscriber and the sessions: meshwatch's default
#: ``mqtt.receive_maximum``, and the ``max_inflight_messages`` of the local mosquitto.
RECEIVE_MAXIMUM = 1000
#: The largest Receive Maximum MQTT 5 allows (a two-byte integer): take everything at once.
_RECEIVE_MAXIMUM_ANY = 65535
#: Seconds a control step (CONNACK, SUBACK, disconnect) may take on localhost.
_STEP_TIMEOUT_S = 10.0


def new_client(client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """Return an MQTT 5 paho client on callback API 2, not yet connected.

    Parameters
    ----------
    client_id : str
        Client ID; it names the session on the broker.
    manual_ack : bool
        Whether the caller acks each QoS 1 message itself with ``client.ack()``.

    Returns
    -------
    paho.mqtt.client.Client
        The client, with no callbacks set.
    """
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )


def connect(
    client: mqtt.Client,
    host: str,
    port: int,
    *,
    expiry_s: int | None = None,
    receive_maximum: int | None = None,
) -> None:
    """Open the connection with TCP_NODELAY and send CONNECT.

    paho's ``connect()`` opens the socket synchronously, so TCP_NODELAY is set before any
    message flows; the CONNACK arrives later through the network loop.

    Parameters
    ----------
    client : paho.mqtt.client.Client
        A client from `new_client`.
    host, port : str, int
        The broker.
    expiry_s : int, optional
        Resume the session of this client ID (``clean_start=False``) with this Session Expiry
        Interval; 0 ends the session with the connection. None starts clean.
    receive_maximum : int, optional
        Receive Maximum to announce (only with ``expiry_s``); the broker default if None.
    """
    if expiry_s is None:
        client.connect(host, port, clean_start=True)
    else:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = expiry_s
        if receive_maximum is not None:
            properties.ReceiveMaximum = receive_maximum
        client.connect(host, port, clean_start=False, properties=properties)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Probe:
    """A control client driven on the calling thread, step by step, each step awaited.

    It keeps the payloads it receives (without acking them when ``manual_ack``) and counts
    them. Not for measuring: copying every payload is far slower than a real subscriber.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID.
    manual_ack : bool
        True to leave every received QoS 1 message unacked.
    """

    def __init__(self, host: str, port: int, client_id: str, *, manual_ack: bool = False):
        self.host, self.port, self.client_id = host, port, client_id
        self.connected = self.subscribed = self.disconnected = False
        self.received = 0
        self.payloads: list[bytes] = []
        self.client = client = new_client(client_id, manual_ack=manual_ack)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect

    def connect(self, *, expiry_s: int | None = None, receive_maximum: int | None = None) -> None:
        """Connect (see `connect` for the arguments) and wait for the CONNACK."""
        connect(
            self.client, self.host, self.port, expiry_s=expiry_s, receive_maximum=receive_maximum
        )
        self.loop_until(lambda: self.connected, _STEP_TIMEOUT_S, f"CONNACK for {self.client_id}")

    def subscribe(self, topic: str) -> None:
        """Subscribe to ``topic`` at QoS 1 and wait for the SUBACK."""
        self.client.subscribe(topic, qos=1)
        self.loop_until(lambda: self.subscribed, _STEP_TIMEOUT_S, f"SUBACK for {self.client_id}")

    def disconnect(self, *, wait: bool = True) -> None:
        """Disconnect; wait until the broker has closed the connection unless ``wait`` is False.

        ``wait=False`` only flushes the DISCONNECT for 0.1 s, for use in ``finally`` blocks
        where a second timeout would hide the first error.
        """
        self.client.disconnect()
        if wait:
            what = f"disconnect of {self.client_id}"
            self.loop_until(lambda: self.disconnected, _STEP_TIMEOUT_S, what)
        else:
            self.client.loop(0.1)

    def loop_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Drive the network loop until ``done()``; raise on timeout or a lost connection."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
            rc = self.client.loop(0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"connection lost waiting for {what}: {mqtt.error_string(rc)}")

    def _on_connect(
        self, c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if rc.is_failure:
            raise RuntimeError(f"broker refused {self.client_id}: {rc}")
        self.connected = True

    def _on_subscribe(
        self, c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        if any(rc.is_failure or rc.value != 1 for rc in rcs):
            raise RuntimeError(f"subscription of {self.client_id} not granted at QoS 1: {rcs}")
        self.subscribed = True

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        self.payloads.append(bytes(msg.payload))

    def _on_disconnect(
        self,
        c: mqtt.Client,
        u: object,
        f: mqtt.DisconnectFlags,
        rc: ReasonCode,
        p: Properties | None,
    ) -> None:
        self.disconnected = True


def create_session(host: str, port: int, client_id: str) -> None:
    """Create a persistent QoS 1 session subscribed to the telemetry topics, then go offline.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID of the session.
    """
    probe = Probe(host, port, client_id, manual_ack=True)
    probe.connect(expiry_s=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM)
    probe.subscribe(TOPIC_FILTER)
    probe.disconnect()


def leftover_and_drop(host: str, port: int, client_id: str, wait: float) -> int:
    """Count the messages still queued or unacked in a session, then delete the session.

    Resumes the session (``clean_start=False``, session expiry 0 so that it ends with this
    connection), takes whatever the broker sends within ``wait`` seconds without acking it,
    and disconnects: the broker then discards the session and its queue.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID of the session.
    wait : float
        Seconds to wait for messages after the CONNACK.

    Returns
    -------
    int
        Messages the broker still had for the session (0 if it was fully acked, or absent).
    """
    probe = Probe(host, port, client_id, manual_ack=True)
    probe.connect(expiry_s=0, receive_maximum=_RECEIVE_MAXIMUM_ANY)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        probe.client.loop(0.05)
    probe.disconnect()
    return probe.received
