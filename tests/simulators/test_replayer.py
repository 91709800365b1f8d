"""Record -> replay through real mosquitto brokers: byte-identical, in order, spaced."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from support import wait_for

from meshwatch.localservers import Mosquitto, free_port
from simulators.errors import BrokerError
from simulators.recorder import record
from simulators.recording import Recorded, read_recording
from simulators.replayer import BackToBack, replay

pytestmark = pytest.mark.integration

Seen = tuple[str, int, bool, bytes]


class _Subscriber:
    """Collects (topic, qos, retain, payload) and arrival times, retain as published."""

    def __init__(self, broker: Mosquitto, topic_filter: str) -> None:
        self.got: list[Seen] = []
        self.times: list[float] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic_filter, options=SubscribeOptions(qos=2, retainAsPublished=True))
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, m: mqtt.MQTTMessage) -> None:
        self.times.append(time.monotonic())
        self.got.append((m.topic, m.qos, bool(m.retain), bytes(m.payload)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _traffic(prefix: str, count: int) -> list[Seen]:
    """Messages over 5 topics with QoS 0 and 1, some retained, one not UTF-8, one empty."""
    out: list[Seen] = []
    for n in range(count):
        topic = f"{prefix}/s{n % 5}/a{n % 5}/telemetry"
        payload = b'{"ts":%d,"metrics":{"v":%d}}' % (1767225600000 + n, n)
        if n == 7:
            payload = b"\xff\xfe\x00 not utf-8 \x80"
        if n == 11:
            payload = b""
        out.append((topic, n % 2, n % 50 == 3, payload))
    return out


def test_record_then_replay_is_byte_identical_in_topic_order(
    mosquitto: Mosquitto, fresh_mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """A recording replayed to a fresh broker gives the same topics, bytes, QoS, retain, order."""
    sent = _traffic(unique_topic, 300)
    out = tmp_path / "run.jsonl.gz"
    ready = threading.Event()
    recorder = threading.Thread(
        target=record,
        args=(mosquitto.host, mosquitto.port, f"{unique_topic}/#"),
        kwargs={"out": out, "count": len(sent), "ready": ready},
        daemon=True,
    )
    recorder.start()
    assert ready.wait(10)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    infos = [pub.publish(t, p, qos=q, retain=r) for t, q, r, p in sent]
    for info in infos:
        info.wait_for_publish(10)
    recorder.join(30)
    pub.loop_stop()
    pub.disconnect()
    assert not recorder.is_alive()
    recorded = [(m.topic, m.qos, m.retain, m.payload) for m in read_recording(out)]
    assert sorted(recorded) == sorted(sent)

    subscriber = _Subscriber(fresh_mosquitto, f"{unique_topic}/#")
    try:
        summary = replay(
            read_recording(out), fresh_mosquitto.host, fresh_mosquitto.port, speed=0, progress=False
        )
        wait_for(lambda: len(subscriber.got) >= len(sent), 30, "the replayed messages")
    finally:
        subscriber.close()
    assert summary.messages == len(sent)
    assert sorted(subscriber.got) == sorted(sent)
    for topic in {t for t, *_ in sent}:
        assert [m for m in subscriber.got if m[0] == topic] == [m for m in sent if m[0] == topic]


def test_speed_divides_the_spacing(fresh_mosquitto: Mosquitto, unique_topic: str) -> None:
    """0.5 s gaps replayed at speed 2 arrive ~0.25 s apart (±30 % over the run)."""
    messages = [
        Recorded(1000.0 + 0.5 * n, f"{unique_topic}/x", 1, False, b"%d" % n) for n in range(9)
    ]
    subscriber = _Subscriber(fresh_mosquitto, f"{unique_topic}/#")
    try:
        summary = replay(messages, fresh_mosquitto.host, fresh_mosquitto.port, speed=2)
        wait_for(lambda: len(subscriber.got) >= 9, 10, "the spaced messages")
    finally:
        subscriber.close()
    span = subscriber.times[-1] - subscriber.times[0]
    gaps = [b - a for a, b in zip(subscriber.times, subscriber.times[1:], strict=False)]
    assert 2.0 * 0.7 <= span <= 2.0 * 1.3
    assert 0.25 * 0.7 <= statistics.median(gaps) <= 0.25 * 1.3
    assert summary.messages == 9


def test_as_fast_as_possible_ignores_the_spacing(
    fresh_mosquitto: Mosquitto, unique_topic: str
) -> None:
    """speed=0 publishes an hour-long recording at once."""
    messages = [Recorded(60.0 * n, f"{unique_topic}/x", 1, False, b"%d" % n) for n in range(60)]
    deadline = time.monotonic() + 30
    summary = replay(messages, fresh_mosquitto.host, fresh_mosquitto.port, speed=0, progress=False)
    assert time.monotonic() < deadline
    assert summary.messages == 60 and summary.rate > 0


def test_loop_goes_round_until_stopped(fresh_mosquitto: Mosquitto, unique_topic: str) -> None:
    """With loop the messages come again, in order, until `stop` is set."""
    messages = [Recorded(float(n), f"{unique_topic}/x", 1, False, b"%d" % n) for n in range(3)]
    subscriber = _Subscriber(fresh_mosquitto, f"{unique_topic}/#")
    stop = threading.Event()

    def stop_after_seven() -> None:
        wait_for(lambda: len(subscriber.got) >= 7, 30, "loops")
        stop.set()

    threading.Thread(target=stop_after_seven, daemon=True).start()
    try:
        summary = replay(
            iter(messages),
            fresh_mosquitto.host,
            fresh_mosquitto.port,
            speed=0,
            loop=True,
            stop=stop,
            progress=False,
        )
    finally:
        subscriber.close()
    payloads = [p for *_, p in subscriber.got]
    assert summary.messages >= 7
    assert payloads[:7] == [b"0", b"1", b"2", b"0", b"1", b"2", b"0"]


def test_unreachable_broker_is_a_broker_error() -> None:
    """No broker on the port: BrokerError naming host and port."""
    port = free_port()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        replay([], "127.0.0.1", port, progress=False)


def test_back_to_back_streams_are_shifted_the_same_on_every_pass() -> None:
    """Each stream starts where the previous ended, and a second pass gives the same again."""
    first = [Recorded(10.0, "a", 1, False, b"1"), Recorded(12.5, "a", 0, True, b"2")]
    second = [Recorded(500.0, "b", 1, False, b"3"), Recorded(501.0, "b", 1, False, b"4")]
    chained = BackToBack([first, second])
    expected = [(10.0, b"1"), (12.5, b"2"), (12.5, b"3"), (13.5, b"4")]
    assert [(m.t, m.payload) for m in chained] == expected
    assert [(m.t, m.payload) for m in chained] == expected
    assert [m.retain for m in chained] == [False, True, False, False]
