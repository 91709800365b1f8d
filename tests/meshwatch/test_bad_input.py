"""Bad input through a real broker: every good reading stored, every bad one a dead letter."""

from __future__ import annotations

import base64
import random
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import (
    BASE_TS,
    PipelineProcess,
    expected_keys,
    fleet_messages,
    pipeline_env,
    publish,
    stored_count,
    stored_keys,
    wait_for,
)

from meshwatch.localservers import Mosquitto

pytestmark = pytest.mark.integration

_NOISE = random.Random(1).randbytes(300)
_GOOD_METRICS = {"temp": 1.0}


def _doc(**fields: object) -> bytes:
    return orjson.dumps({"ts": BASE_TS, **fields})


# (case, site/asset levels of the topic, payload, expected reason); malformed topics that
# cannot match the subscription never reach the pipeline and are tested in test_decode.
MALFORMED: list[tuple[str, str, bytes, str]] = [
    ("not-json", "s1/a1", b"this is not json", "bad_json"),
    ("truncated-json", "s1/a1", b'{"ts": 1, "metrics": {"temp": 1.', "bad_json"),
    ("empty-payload", "s1/a1", b"", "bad_json"),
    ("binary-noise", "s1/a1", _NOISE, "bad_utf8"),
    ("utf8-error", "s1/a1", b'{"metrics": {"temp": 1}, "note": "\xff\xfe"}', "bad_utf8"),
    ("json-number", "s1/a1", b"42", "bad_shape"),
    ("json-string", "s1/a1", b'"hello"', "bad_shape"),
    ("json-null", "s1/a1", b"null", "bad_shape"),
    ("empty-array", "s1/a1", b"[]", "bad_shape"),
    ("array-of-numbers", "s1/a1", b"[1, 2, 3]", "bad_shape"),
    ("metrics-is-list", "s1/a1", _doc(metrics=[1, 2]), "bad_shape"),
    ("metric-is-string", "s1/a1", _doc(metrics={"temp": "61.2"}), "bad_metric_value"),
    ("metric-is-null", "s1/a1", _doc(metrics={"temp": None}), "bad_metric_value"),
    ("nested-garbage", "s1/a1", _doc(metrics={"temp": {"a": [{"b": {}}]}}), "bad_metric_value"),
    ("nan-string", "s1/a1", _doc(metrics={"temp": "NaN"}), "bad_metric_value"),
    ("infinity-string", "s1/a1", _doc(metrics={"temp": "Infinity"}), "bad_metric_value"),
    ("nan-number", "s1/a1", b'{"metrics": {"temp": NaN}}', "non_finite"),
    ("infinity-number", "s1/a1", b'{"metrics": {"temp": -Infinity}}', "non_finite"),
    ("huge-number", "s1/a1", b'{"metrics": {"temp": 1e400}}', "non_finite"),
    ("huge-integer", "s1/a1", b'{"metrics": {"temp": 1' + b"0" * 400 + b"}}", "non_finite"),
    ("empty-metrics", "s1/a1", _doc(metrics={}), "no_metrics"),
    ("flat-without-numbers", "s1/a1", _doc(unit="C", label="x"), "no_metrics"),
    ("65-metrics", "s1/a1", _doc(metrics={f"m{i}": i for i in range(65)}), "too_many_metrics"),
    ("bad-metric-name", "s1/a1", _doc(metrics={"spindle temp": 1.0}), "bad_metric_name"),
    ("70-KiB-payload", "s1/a1", _doc(metrics=_GOOD_METRICS, pad="x" * 70 * 1024), "oversize"),
    ("space-in-asset-id", "s1/a 1", _doc(metrics=_GOOD_METRICS), "bad_id"),
    ("wildcard-like-site-id", "s*/a1", _doc(metrics=_GOOD_METRICS), "bad_id"),
    ("65-char-asset-id", "s1/" + "a" * 65, _doc(metrics=_GOOD_METRICS), "bad_id"),
    (
        "future-timestamp",
        "s1/a1",
        orjson.dumps({"ts": 4_000_000_000, "metrics": {"t": 1}}),
        "future_timestamp",
    ),
    ("negative-epoch", "s1/a1", orjson.dumps({"ts": -5, "metrics": {"t": 1}}), "bad_timestamp"),
    (
        "ts-without-zone",
        "s1/a1",
        orjson.dumps({"ts": "2026-01-01T00:00:00", "metrics": {"t": 1}}),
        "bad_timestamp",
    ),
    ("ts-is-boolean", "s1/a1", orjson.dumps({"ts": True, "metrics": {"t": 1}}), "bad_timestamp"),
    ("bad-kind", "s1/a1", _doc(kind={"x": 1}, metrics=_GOOD_METRICS), "bad_kind"),
    ("negative-seq", "s1/a1", _doc(seq=-1, metrics=_GOOD_METRICS), "bad_seq"),
    (
        "one-bad-item-in-batch",
        "s1/a1",
        orjson.dumps(
            [{"ts": BASE_TS, "metrics": {"t": 1}}, {"ts": BASE_TS, "metrics": {"t": "x"}}]
        ),
        "bad_metric_value",
    ),
]


def _raw(letter: dict[str, str]) -> tuple[str, bytes]:
    if "payload" in letter:
        return letter["topic"], letter["payload"].encode()
    return letter["topic"], base64.b64decode(letter["payload_base64"])


def test_malformed_messages_become_dead_letters_and_good_readings_are_stored(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """35 kinds of malformed message interleaved with 2,000 good ones: each lands right."""
    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    good = fleet_messages(unique_topic, 2000)
    bad = [(f"{unique_topic}/{ids}/telemetry", payload) for _, ids, payload, _ in MALFORMED]
    mixed: list[tuple[str, bytes]] = []
    for n, message in enumerate(good):
        mixed.append(message)
        if n % 50 == 0 and n // 50 < len(bad):
            mixed.append(bad[n // 50])
    publish(mosquitto, mixed)
    db = data_dir / "meshwatch.db"
    wait_for(lambda: stored_count(db) >= len(good), 60, "good readings stored")
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "deadletters", "--json", "--limit", "1000"],
        env=pipeline.env,
        capture_output=True,
        check=True,
    )
    assert pipeline.alive()
    letters = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert set(stored_keys(db)) == expected_keys(good)
    # an oversize dead letter keeps the first max_payload (64 KiB) bytes
    assert {_raw(letter): letter["reason"] for letter in letters} == {
        (f"{unique_topic}/{ids}/telemetry", payload[:65_536]): reason
        for _, ids, payload, reason in MALFORMED
    }
    code, _ = pipeline.stop()
    assert code == 0


def test_dead_letters_keep_topic_and_exact_bytes(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """A dead letter holds the topic and the raw payload bytes, even when they are not UTF-8."""
    from ingest.deadletters import DeadLetters

    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    topic = f"{unique_topic}/s1/a1/telemetry"
    publish(mosquitto, [(topic, _NOISE)])
    store = DeadLetters(data_dir / "deadletters.db")
    wait_for(lambda: bool(store.latest()), 20, "the dead letter")
    (letter,) = store.latest()
    store.close()
    pipeline.stop()
    assert (letter.topic, letter.payload, letter.reason.value) == (topic, _NOISE, "bad_utf8")


def test_dead_letters_are_republished_when_asked(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """With ingest.publish_deadletters, a rejection is also published to <prefix>/deadletter."""
    prefix = f"mw{unique_topic}"
    received: list[dict[str, object]] = []
    got = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        received.append(orjson.loads(msg.payload))
        got.set()

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = on_message
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.subscribe(f"{prefix}/deadletter", qos=1)
    watcher.loop_start()
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_INGEST__PUBLISH_DEADLETTERS="true",
        MESHWATCH_MQTT__PREFIX=prefix,
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    publish(mosquitto, [(f"{unique_topic}/s1/a1/telemetry", b'{"metrics": {}}')])
    assert got.wait(20)
    watcher.loop_stop()
    pipeline.stop()
    assert received[0]["reason"] == "no_metrics"
    assert received[0]["payload"] == '{"metrics": {}}'
    assert received[0]["topic"] == f"{unique_topic}/s1/a1/telemetry"
