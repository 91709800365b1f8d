"""Scoring in the live pipeline: one anomaly record per reading, faults flagged, restarts warm."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest
from support import (
    BASE_TS,
    PipelineProcess,
    pipeline_env,
    publish,
    sample_count,
    site_scoped,
    stored_count,
    wait_for,
)

from ingest.embedded import EmbeddedStore
from meshwatch.localservers import Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration

WARMUP = 100  # short, for the restart test; the fault test runs the shipped default (400)
CONFIG = f"""
models:
  checkpoint_interval: 0.5
  profiles:
    - name: default
      warmup: {WARMUP}
"""


def _reading(rng: random.Random, n: int, fault: bool) -> bytes:
    load = rng.gauss(0, 1)
    metrics = {
        "current_a": 10 + 2 * load + rng.gauss(0, 0.2),
        "spindle_temp_c": 60 + 3 * load + rng.gauss(0, 0.3) + (12 if fault else 0),
        "vibration_rms": 0.4 + rng.gauss(0, 0.02),
    }
    return orjson.dumps({"ts": BASE_TS + n * 1000, "kind": "cnc-mill", "metrics": metrics})


def _stream(prefix: str, assets: int, start: int, count: int, faulty: dict[int, range]):
    rng = random.Random(start)
    return [
        (f"{prefix}/s{a % 4}/a{a}/telemetry", _reading(rng, n, n in faulty.get(a, range(0))))
        for n in range(start, start + count)
        for a in range(assets)
    ]


def _anomaly_rows(db: Path, site: str, asset: str) -> list[dict[str, object]]:
    store = EmbeddedStore(db)
    try:
        return list(store.rows("anomaly", site=site, asset=asset))
    finally:
        store.close()


def _pipeline(
    broker: Mosquitto, data_dir: Path, prefix: str, tmp_path: Path, text: str = CONFIG
) -> PipelineProcess:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(text)
    return PipelineProcess(pipeline_env(broker, data_dir, prefix), tmp_path / "log", config)


def test_planted_fault_is_flagged_on_its_asset_only(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """20 assets, a fault on one: anomaly records for all readings, flags only on the fault."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, tmp_path, "models: {}\n")
    pipeline.start()
    fault = range(450, 500)
    messages = _stream(unique_topic, 20, 0, 550, {7: fault})
    publish(mosquitto, messages)
    db = data_dir / "meshwatch.db"
    wait_for(lambda: stored_count(db) >= len(messages), 60, "every reading stored")
    pipeline.stop()
    flagged: dict[int, list[int]] = {}
    for a in range(20):
        rows = _anomaly_rows(db, f"s{a % 4}", f"a{a}")
        assert len(rows) == 550
        flagged[a] = [
            (int(str(r["ts"])) // 1_000_000 - BASE_TS) // 1000
            for r in rows
            if r["fields"]["anomalous"]  # type: ignore[index]
        ]
    healthy = {a: f for a, f in flagged.items() if a != 7}
    assert all(not f for f in healthy.values()), {a: f for a, f in healthy.items() if f}
    assert len([n for n in flagged[7] if n in fault]) >= 40
    top = [r["fields"]["top_metric"] for r in _anomaly_rows(db, "s3", "a7")[460:500]]  # type: ignore[index]
    assert top.count("spindle_temp_c") >= 35


def test_restored_models_continue_without_a_new_warm_up(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """SIGKILL after the models warmed up and were checkpointed: the restart is not cold."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, tmp_path)
    pipeline.start()
    db = data_dir / "meshwatch.db"
    first = _stream(unique_topic, 3, 0, WARMUP + 50, {})
    publish(mosquitto, first)
    wait_for(lambda: stored_count(db) >= len(first), 30, "the warm-up stored")
    time.sleep(0.6)  # past checkpoint_interval: the next batch saves the models
    tick = _stream(unique_topic, 3, WARMUP + 50, 1, {})
    publish(mosquitto, tick)
    wait_for(lambda: stored_count(db) >= len(first) + 3, 30, "the checkpointing batch")
    time.sleep(0.3)
    pipeline.kill()
    pipeline.start()
    later = _stream(unique_topic, 3, WARMUP + 60, 20, {})
    publish(mosquitto, later)
    wait_for(lambda: stored_count(db) >= len(first) + 3 + len(later), 30, "readings after restart")
    pipeline.stop()
    rows = _anomaly_rows(db, "s0", "a0")
    after = [r for r in rows if int(str(r["ts"])) >= (BASE_TS + (WARMUP + 60) * 1000) * 1_000_000]
    assert len(after) == 20
    assert not any(r["fields"]["warming_up"] for r in after)  # type: ignore[index]


def test_anomaly_records_reach_victoria_metrics_with_the_fault_flagged(
    mosquitto: Mosquitto,
    victoria_metrics: VictoriaMetrics,
    data_dir: Path,
    unique_topic: str,
    tmp_path: Path,
) -> None:
    """Through the InfluxDB API: a score per reading of every asset, flags only on the fault."""
    config = tmp_path / "meshwatch.yaml"
    config.write_text("models: {}\n")
    env = pipeline_env(
        mosquitto, data_dir, unique_topic, MESHWATCH_INFLUX__URL=victoria_metrics.url
    )
    pipeline = PipelineProcess(env, tmp_path / "log", config)
    pipeline.start()
    # Sites unique to this test keep the session's VictoriaMetrics series apart.
    messages = site_scoped(_stream(unique_topic, 6, 0, 520, {2: range(450, 500)}), unique_topic)
    publish(mosquitto, messages)
    scores = f'{{__name__="anomaly_score",site=~"{unique_topic}s.*"}}'
    wait_for(
        lambda: sample_count(victoria_metrics, scores) >= len(messages),
        60,
        "a score for every reading",
    )
    pipeline.stop()
    flags = victoria_metrics.export(f'{{__name__="anomaly_anomalous",site=~"{unique_topic}s.*"}}')
    flagged = {series["metric"]["asset"]: sum(series["values"]) for series in flags}
    assert len(flagged) == 6
    assert {a: n for a, n in flagged.items() if a != "a2" and n} == {}
    assert flagged["a2"] >= 40
    assert {series["metric"]["detector"] for series in flags} == {"default"}
