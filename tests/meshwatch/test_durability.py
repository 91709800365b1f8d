"""Durability: crashes, storage outages and broker restarts lose no acknowledged reading."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support import (
    PipelineProcess,
    Publisher,
    expected_keys,
    fleet_messages,
    pipeline_env,
    sample_count,
    stored_count,
    stored_keys,
    wait_for,
)

from meshwatch.localservers import Mosquitto, VictoriaMetrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_sigkill_twice_mid_stream_loses_nothing_and_stores_nothing_twice(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """SIGKILL the pipeline twice during a 20,000-reading stream: all stored, none twice."""
    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    messages = fleet_messages(unique_topic, 20_000)
    db = data_dir / "meshwatch.db"
    publisher = Publisher(mosquitto)
    chunks = [messages[i : i + 1000] for i in range(0, len(messages), 1000)]
    for n, chunk in enumerate(chunks):
        publisher.publish(chunk)
        time.sleep(0.15)
        if n in (6, 13):
            assert 0 < stored_count(db) < len(messages), "the kill must land mid-stream"
            pipeline.kill()
            pipeline.start()
    publisher.wait()
    publisher.close()
    wait_for(lambda: stored_count(db) >= len(messages), 90, "20,000 readings stored")
    pipeline.stop()
    keys = stored_keys(db)
    assert len(keys) == len(messages)
    assert set(keys) == expected_keys(messages)


# A retryable InfluxDB write error counted since the pipeline started (absent before the first).
_FAILED_WRITE = re.compile(r'^meshwatch_influx_write_errors_total\{retryable="true"\} [1-9]', re.M)


def test_storage_outage_spools_on_disk_and_delivers_everything_after(
    mosquitto: Mosquitto,
    fresh_victoria_metrics: VictoriaMetrics,
    data_dir: Path,
    unique_topic: str,
    tmp_path: Path,
) -> None:
    """VictoriaMetrics down mid-stream (and the pipeline killed then): all arrive."""
    vm = fresh_victoria_metrics
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_INFLUX__URL=vm.url,
        MESHWATCH_INFLUX__TIMEOUT="2",
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    messages = fleet_messages(unique_topic, 10_000)
    publisher = Publisher(mosquitto)
    publisher.publish(messages[:3000])
    publisher.wait()
    vm.stop()
    publisher.publish(messages[3000:])
    publisher.wait()
    wait_for(
        lambda: _metric(pipeline.metrics(), "meshwatch_acks_total") >= 7000,
        30,
        "the pipeline to ack the readings that came during the outage",
    )
    metrics = pipeline.metrics()
    assert _metric(metrics, "meshwatch_spool_depth_lines") >= 7000
    # Acked but not yet in VictoriaMetrics: only the spool on disk holds them now.
    pipeline.kill()
    pipeline.start()
    # The outage lasts until the restarted pipeline has met it: its spool stays undelivered.
    wait_for(
        lambda: _FAILED_WRITE.search(pipeline.metrics()) is not None,
        30,
        "the restarted pipeline to fail a write to the stopped VictoriaMetrics",
    )
    vm.start()

    wait_for(lambda: sample_count(vm) >= len(messages), 90, "10,000 samples after the outage")
    publisher.close()
    pipeline.stop()
    assert sample_count(vm) == len(messages)


def test_broker_restart_mid_stream_loses_no_acknowledged_reading(
    fresh_mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Restart mosquitto (with persistence) mid-stream: every reading it acked is stored."""
    broker = fresh_mosquitto
    pipeline = PipelineProcess(pipeline_env(broker, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    messages = fleet_messages(unique_topic, 10_000)
    db = data_dir / "meshwatch.db"
    publisher = Publisher(broker, client_id=f"pub-{unique_topic}")
    for n in range(10):
        publisher.publish(messages[n * 1000 : (n + 1) * 1000])
        time.sleep(0.1)
        if n == 4:
            broker.restart()
    publisher.wait(90)
    acknowledged = publisher.acknowledged()
    publisher.close()
    assert len(acknowledged) == len(messages)
    wait_for(lambda: stored_count(db) >= len(messages), 90, "every acknowledged reading")
    code, _ = pipeline.stop()
    assert code == 0
    assert set(stored_keys(db)) == expected_keys(acknowledged)


def test_full_spool_stops_acking_and_the_broker_holds_the_backlog(
    mosquitto: Mosquitto,
    fresh_victoria_metrics: VictoriaMetrics,
    data_dir: Path,
    unique_topic: str,
    tmp_path: Path,
) -> None:
    """With InfluxDB down and the spool full, acks stop (no drop); all arrive once it is back."""
    vm = fresh_victoria_metrics
    vm.stop()
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_INFLUX__URL=vm.url,
        MESHWATCH_SPOOL__MAX_BYTES=str(64 * 1024),
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    messages = fleet_messages(unique_topic, 5000)
    publisher = Publisher(mosquitto)
    publisher.publish(messages)
    publisher.wait()
    wait_for(
        lambda: _metric(pipeline.metrics(), "meshwatch_backpressure") == 1, 30, "back-pressure"
    )
    metrics = pipeline.metrics()
    acked = _metric(metrics, "meshwatch_acks_total")
    assert acked < len(messages)
    # each acked reading is spooled with its anomaly record (two lines), and each of the 50
    # assets with the health record of its first sight
    assert _metric(metrics, "meshwatch_spool_depth_lines") <= 2 * acked + 50
    assert "holding" in pipeline.log() and "spool is full" in pipeline.log()
    vm.start()

    wait_for(lambda: sample_count(vm) >= len(messages), 90, "every reading after the spool drained")
    assert _metric(pipeline.metrics(), "meshwatch_backpressure") == 0
    publisher.close()
    pipeline.stop()
