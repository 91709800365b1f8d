"""The recorder against a real mosquitto: what it writes, and when it stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from meshwatch.localservers import Mosquitto, free_port
from simulators.errors import BrokerError
from simulators.recorder import record
from simulators.recording import read_recording

pytestmark = pytest.mark.integration


def _publisher(broker: Mosquitto) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _recording(broker: Mosquitto, topic: str, out: Path, **bounds: object) -> threading.Thread:
    """Start `record` in a thread; return once it is subscribed."""
    ready = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        result["count"] = record(broker.host, broker.port, topic, out=out, ready=ready, **bounds)  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.result = result  # type: ignore[attr-defined]
    thread.start()
    assert ready.wait(10), "the recorder did not subscribe"
    return thread


def test_records_topic_qos_retain_and_bytes(
    mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """Each message is written with its topic, QoS, retain flag and exact payload."""
    out = tmp_path / "rec.jsonl.gz"
    thread = _recording(mosquitto, f"{unique_topic}/#", out, count=3)
    pub = _publisher(mosquitto)
    try:
        pub.publish(f"{unique_topic}/a", b"\xff\x00bin", qos=1).wait_for_publish(10)
        pub.publish(f"{unique_topic}/b", b"text", qos=0, retain=True).wait_for_publish(10)
        pub.publish(f"{unique_topic}/b", b"", qos=1, retain=True).wait_for_publish(10)  # clears
        thread.join(10)
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert not thread.is_alive()
    assert thread.result["count"] == 3  # type: ignore[attr-defined]
    got = [(m.topic, m.qos, m.retain, m.payload) for m in read_recording(out)]
    assert got == [
        (f"{unique_topic}/a", 1, False, b"\xff\x00bin"),
        (f"{unique_topic}/b", 0, True, b"text"),
        (f"{unique_topic}/b", 1, True, b""),
    ]


def test_arrival_times_are_recorded(
    mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """``t`` is the wall-clock arrival time, non-decreasing."""
    out = tmp_path / "rec.jsonl.gz"
    before = time.time()
    thread = _recording(mosquitto, f"{unique_topic}/#", out, count=5)
    pub = _publisher(mosquitto)
    for n in range(5):
        pub.publish(f"{unique_topic}/x", b"%d" % n, qos=1).wait_for_publish(10)
    thread.join(10)
    pub.loop_stop()
    pub.disconnect()
    times = [m.t for m in read_recording(out)]
    assert times == sorted(times)
    assert before <= times[0] <= times[-1] <= time.time()


def test_stop_event_ends_with_a_complete_file(
    mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """Setting `stop` ends the recording; the file is a complete gzip stream."""
    out = tmp_path / "rec.jsonl.gz"
    stop = threading.Event()
    thread = _recording(mosquitto, f"{unique_topic}/#", out, stop=stop)
    pub = _publisher(mosquitto)
    pub.publish(f"{unique_topic}/x", b"one", qos=1).wait_for_publish(10)
    pub.loop_stop()
    pub.disconnect()
    time.sleep(0.3)  # let it arrive; not a timing assertion
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert [m.payload for m in read_recording(out)] == [b"one"]


def test_duration_bound_ends_the_recording(
    mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """With only a duration the recorder returns by itself, with 0 messages here."""
    out = tmp_path / "rec.jsonl.gz"
    count = record(mosquitto.host, mosquitto.port, f"{unique_topic}/#", out=out, duration=0.3)
    assert count == 0
    assert list(read_recording(out)) == []


def test_unreachable_broker_is_a_broker_error(tmp_path: Path) -> None:
    """No broker on the port: BrokerError naming host and port."""
    port = free_port()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
        record("127.0.0.1", port, "#", out=tmp_path / "x.jsonl.gz", count=1)
