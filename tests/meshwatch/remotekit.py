"""Stand-ins for the running pipeline's side of `meshwatch.remote`, on a real broker.

`Responder` answers commands the way the pipeline's command handler will (its contract is in
`meshwatch.remote`); `support.publish_retained` leaves health messages as the pipeline does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import wait_for

from common.closing import Closing
from common.mqtt import release
from ingest.settings import MqttSettings
from meshwatch.localservers import Mosquitto

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


def settings_for(broker: Mosquitto, prefix: str, **extra: Any) -> MqttSettings:
    """MQTT settings of a pipeline on `broker` whose topics are all under `prefix`."""
    return MqttSettings(host=broker.host, port=broker.port, prefix=prefix, **extra)


def env_for(broker: Mosquitto, prefix: str) -> dict[str, str]:
    """The same as environment variables, for the CLI (wide, so tables do not wrap)."""
    return {
        "MESHWATCH_MQTT__HOST": broker.host,
        "MESHWATCH_MQTT__PORT": str(broker.port),
        "MESHWATCH_MQTT__PREFIX": prefix,
        "COLUMNS": "200",
    }


class ClientContext(Closing):
    """A test's paho client with its loop thread, stopped and released on leaving ``with``."""

    client: mqtt.Client

    def close(self) -> None:
        """Stop the loop thread, disconnect and release the client."""
        self.client.loop_stop()
        self.client.disconnect()
        release(self.client)


class Responder(ClientContext):
    """Answers each command on ``<prefix>/cmd/<command>`` with ``answer(command, body)``.

    The reply goes to ``<prefix>/cmd/result`` with the command's ``request_id`` and name
    added; every command received is kept in `received`.
    """

    def __init__(self, broker: Mosquitto, prefix: str, answer: Answer) -> None:
        self.prefix = prefix
        self.answer = answer
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"{prefix}/cmd/+", qos=1)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, 10, "the responder's SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = msg.topic.rsplit("/", 1)[1]
        if command == "result":
            return
        body = orjson.loads(msg.payload)
        self.received.append((command, body))
        reply = {"request_id": body.get("request_id"), "command": command}
        reply.update(self.answer(command, body))
        client.publish(f"{self.prefix}/cmd/result", orjson.dumps(reply), qos=1)
