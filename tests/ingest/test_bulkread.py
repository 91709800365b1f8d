"""The subscriber's bulk reads of PUBLISH packets (`common.mqtt.bulkread`), beside paho."""

from __future__ import annotations

import struct
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import publish

from common.mqtt import Broker, Protocol, Session, connect, new_client
from common.mqtt.bulkread import BulkReader, Publish, parse_publishes
from meshwatch.localservers import Mosquitto


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 127
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _publish(
    topic: bytes, payload: bytes, mid: int = 1, qos: int = 1, properties: bytes | None = None
) -> bytes:
    """A PUBLISH packet as MQTT 3.1.1 (`properties` None) or MQTT 5 sends it."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    if properties is not None:
        body += _varint(len(properties)) + properties
    body += payload
    return bytes([0x30 | qos << 1]) + _varint(len(body)) + body


_PUBACK = bytes([0x40, 2, 0, 9])
_PINGRESP = bytes([0xD0, 0])


def test_publishes_are_read_with_topic_payload_packet_id_and_qos() -> None:
    """Every whole QoS 0/1 PUBLISH in order, and the bytes they span."""
    data = _publish(b"p/s1/a1/t", b'{"t": 1}', mid=7) + _publish(b"p/s1/a2/t", b"{}", qos=0)
    assert parse_publishes(data, False, 100) == (
        [Publish("p/s1/a1/t", b'{"t": 1}', 7, 1), Publish("p/s1/a2/t", b"{}", 0, 0)],
        len(data),
    )


def test_mqtt5_properties_are_skipped() -> None:
    """On MQTT 5 the properties between packet id and payload are not part of the payload."""
    properties = bytes([0x01, 1]) + bytes([0x03]) + struct.pack("!H", 4) + b"json"
    data = _publish(b"p/s/a/t", b"[1]", properties=properties)
    assert parse_publishes(data, True, 100) == ([Publish("p/s/a/t", b"[1]", 1, 1)], len(data))


@pytest.mark.parametrize("size", [127, 128, 16_383, 16_384, 70_000])
def test_remaining_lengths_of_every_width_are_read(size: int) -> None:
    """A remaining length takes 1 to 3 bytes here (up to 2 MiB); the payload comes whole."""
    data = _publish(b"t", b"x" * size) + _PUBACK
    found, used = parse_publishes(data, False, 100)
    assert [len(p.payload) for p in found] == [size]
    assert used == len(data) - len(_PUBACK)


@pytest.mark.parametrize(
    "front",
    [_PUBACK, _PINGRESP, _publish(b"t", b"qos 2", qos=2), _publish(b"", b"topic alias")],
    ids=["puback", "pingresp", "qos-2", "empty-topic"],
)
def test_reading_stops_at_a_packet_that_is_paho_s(front: bytes) -> None:
    """Anything but a QoS 0/1 PUBLISH with a topic is left where it is, with what follows."""
    first = _publish(b"t", b"1")
    data = first + front + _publish(b"t", b"2")
    assert parse_publishes(data, False, 100) == ([Publish("t", b"1", 1, 1)], len(first))


@pytest.mark.parametrize("cut", [1, 2, 5, 20], ids=["type", "length", "topic", "payload"])
def test_a_packet_not_yet_whole_is_left_in_the_socket(cut: int) -> None:
    """The last packet cut anywhere is not read: paho (or the next read) takes it whole."""
    whole = _publish(b"p/s/a/t", b"x" * 200)
    first = _publish(b"t", b"1")
    data = first + whole[:cut]
    assert parse_publishes(data, False, 100) == ([Publish("t", b"1", 1, 1)], len(first))


def test_no_more_than_the_limit_are_read() -> None:
    """The batch's room caps a read; the rest stays for the next."""
    data = b"".join(_publish(b"t", str(i).encode(), mid=i + 1) for i in range(5))
    found, used = parse_publishes(data, False, 2)
    assert [p.mid for p in found] == [1, 2]
    assert used == 2 * len(_publish(b"t", b"0"))


def test_a_topic_that_is_not_utf8_is_kept_readable() -> None:
    """Invalid UTF-8 in a topic becomes U+FFFD, as the subscriber's paho path has it."""
    (publish_,), _ = parse_publishes(_publish(b"p/\xff/a/t", b"{}"), False, 100)
    assert publish_.topic == "p/\ufffd/a/t"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_backlog_is_read_whole_in_order_while_paho_reads_the_rest(
    mosquitto: Mosquitto, unique_topic: str, protocol: Protocol
) -> None:
    """Against mosquitto: a queued backlog comes once and in order, many messages a read.

    The PUBACK of the client's own publish, behind it in the socket, still reaches paho.
    """
    session = Session(f"bulk-{protocol}-{unique_topic[-8:]}", protocol, persistent=True)
    broker = Broker(mosquitto.host, mosquitto.port)
    client = new_client(broker, session, manual_ack=True, reconnect=False)
    got: list[Publish] = []
    subscribed: list[int] = []

    def slow(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(Publish(msg.topic, bytes(msg.payload), msg.mid, msg.qos))
        client.ack(msg.mid, msg.qos)

    client.on_message = slow
    client.on_subscribe = lambda _c, _u, mid, *_: subscribed.append(mid)
    connect(client, broker, session)
    client.subscribe(f"{unique_topic}/#", qos=1)
    while not subscribed:
        assert client.loop(0.1) == mqtt.MQTT_ERR_SUCCESS
    messages = [(f"{unique_topic}/s/a{i % 7}/t", str(i).encode()) for i in range(3000)]
    publish(mosquitto, messages)
    own = client.publish(f"{unique_topic}-own", b"x", qos=1)
    reader = BulkReader(v5=protocol == "5")
    reads = bulk = 0
    deadline = time.monotonic() + 30
    while len(got) < len(messages) or not own.is_published():
        assert time.monotonic() < deadline, f"{len(got)} of {len(messages)} messages"
        batch = reader.read(client, 1000)
        reads += bool(batch)
        bulk += len(batch)
        got.extend(batch)
        if not batch:
            assert client.loop(0.05) == mqtt.MQTT_ERR_SUCCESS
        for p in batch:  # the broker sends no more than its window unacked
            client.ack(p.mid, p.qos)
    client.disconnect()
    assert [(p.topic, p.payload) for p in got] == messages
    assert bulk > 0.9 * len(messages)  # paho's own reads took a few at most
    assert reads < bulk / 10  # many messages a read
    assert {p.qos for p in got} == {1}


def test_a_client_without_a_plain_socket_is_left_to_paho() -> None:
    """No socket it can peek at (none yet; TLS: tests/meshwatch/test_tls.py): it reads nothing."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    assert BulkReader(v5=True).read(client, 10) == []
