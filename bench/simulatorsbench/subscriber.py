"""The subscriber that drains the broker while something publishes, and counts what it got.

It is bare paho (MQTT 5, callback API 2, TCP_NODELAY through `benchcommon.sessions`), a clean
session subscribed at QoS 1 to the telemetry topics, with paho acking each message itself
(``manual_ack=False``). Its network thread (``loop_start``) runs in the benchmark's process:
its work per message (one callback, one PUBACK) competes with the publisher under test for
the GIL, equally for the simulator and the bare baseline.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from benchcommon.sessions import connect, new_client
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .workload import TOPIC_FILTER

_STEP_TIMEOUT_S = 10.0


class Counter:
    """A counting subscriber; a context manager that connects, subscribes and disconnects.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID (a clean session: nothing is left on the broker afterwards).

    Attributes
    ----------
    count : int
        Messages received so far.
    last : float
        ``time.monotonic()`` of the latest message (0 before the first).
    """

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.count = 0
        self.last = 0.0
        self._subscribed = threading.Event()
        self._refused = ""
        self._cond = threading.Condition()
        self.client = client = new_client(client_id)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def __enter__(self) -> Counter:
        connect(self.client, self.host, self.port)
        self.client.loop_start()
        if not self._subscribed.wait(_STEP_TIMEOUT_S) or self._refused:
            self.client.loop_stop()
            raise RuntimeError(f"subscriber {self.client_id}: {self._refused or 'no SUBACK'}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, expected: int, timeout: float) -> bool:
        """Wait until ``expected`` messages came (True) or nothing new came for ``timeout`` s."""
        with self._cond:
            seen, deadline = self.count, time.monotonic() + timeout
            while self.count < expected:
                if self.count != seen:
                    seen, deadline = self.count, time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    def _on_connect(
        self, c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if rc.is_failure:
            self._refused = f"refused: {rc}"
            self._subscribed.set()
            return
        c.subscribe(TOPIC_FILTER, qos=1)

    def _on_subscribe(
        self, c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        if any(rc.is_failure or rc.value != 1 for rc in rcs):
            self._refused = f"subscription not granted at QoS 1: {rcs}"
        self._subscribed.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.count += 1
        self.last = time.monotonic()
        if self.count % 1000 == 0:
            with self._cond:
                self._cond.notify_all()
