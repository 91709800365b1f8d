"""The demo's fallback broker: amqtt in this process, MQTT 3.1.1."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import wait_for

from meshwatch.localservers.inprocess import InProcessBroker, available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not available(), reason="amqtt is not installed"),
]


def _client(broker: InProcessBroker, **kwargs: object) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311, **kwargs
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_it_carries_qos_1_messages_between_clients() -> None:
    """What one client publishes at QoS 1, a subscriber receives, in order."""
    with InProcessBroker() as broker:
        got: list[bytes] = []
        subscribed = threading.Event()
        sub = _client(broker)
        sub.on_subscribe = lambda *args: subscribed.set()
        sub.on_message = lambda client, userdata, msg: got.append(bytes(msg.payload))
        sub.subscribe("plant/#", qos=1)
        wait_for(subscribed.is_set, 10, "SUBACK")
        pub = _client(broker)
        infos = [pub.publish("plant/s/a/telemetry", str(n).encode(), qos=1) for n in range(50)]
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: len(got) == 50, 10, "50 messages")
        assert got == [str(n).encode() for n in range(50)]
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()
