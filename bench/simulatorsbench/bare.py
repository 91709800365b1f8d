"""The baseline: bare paho publishing messages built beforehand, as fast as the broker acks.

One MQTT 5 client (`benchcommon.sessions`: TCP_NODELAY), 1,000 messages in flight (the local
mosquitto's ``max_inflight_messages``, and what the simulator and the replayer set), paho's
queue unbounded, and at most ``window`` messages unacknowledged, as the simulator (10,000) and
the replayer (1,000) allow: when the window is full the loop waits until a tenth of it has
been acknowledged (so that it sleeps and wakes once per hundreds of PUBACKs, not per PUBACK).
It publishes in a tight loop from the calling thread while paho's network thread sends;
nothing is generated, encoded or read on the way. The time runs from the first ``publish()``
to the last PUBACK.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from benchcommon.publisher import connected_publisher
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: paho's in-flight limit, as `simulators.publisher` and `simulators.replayer` set it.
INFLIGHT = 1000
#: No PUBACK for this long: the broker is gone.
_ACK_TIMEOUT_S = 60.0
_NEVER = 1 << 62


class _Acks:
    """PUBACKs counted by paho's network thread; the publisher waits on them only when blocked.

    The count goes up without a lock; the lock and a notify happen only once it reaches the
    `target` a waiting publisher set, so an unblocked run costs one addition per PUBACK.
    """

    def __init__(self) -> None:
        self.acked = 0
        self.target = _NEVER
        self.cond = threading.Condition()

    def on_publish(
        self, c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties | None
    ) -> None:
        self.acked += 1
        if self.acked >= self.target:
            with self.cond:
                self.cond.notify_all()

    def wait(self, at_least: int) -> None:
        with self.cond:
            self.target = at_least
            seen, deadline = self.acked, time.monotonic() + _ACK_TIMEOUT_S
            while self.acked < at_least:
                if self.acked != seen:
                    seen, deadline = self.acked, time.monotonic() + _ACK_TIMEOUT_S
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bare publisher: no PUBACK for {_ACK_TIMEOUT_S:.0f} s")
                self.cond.wait(0.05)
            self.target = _NEVER


def publish(host: str, port: int, messages: list[tuple[str, bytes]], window: int) -> float:
    """Publish ``messages`` at QoS 1; return the seconds from the first to the last PUBACK.

    Parameters
    ----------
    host, port : str, int
        The broker.
    messages : list of tuple of (str, bytes)
        Topic and payload of each message.
    window : int
        Unacknowledged messages allowed at once.
    """
    acks = _Acks()
    client = connected_publisher(host, port, "", INFLIGHT, acks.on_publish)
    try:
        started = time.monotonic()
        send = client.publish
        for index, (topic, payload) in enumerate(messages):
            if index - acks.acked >= window:
                # full: wait for a tenth of the window to free up, then go on
                acks.wait(index - window + max(1, window // 10))
            info = send(topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"bare publisher: publish() of message {index}: {info.rc}")
        acks.wait(len(messages))
        return time.monotonic() - started
    finally:
        client.disconnect()
        client.loop_stop()
