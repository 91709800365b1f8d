"""Round trip: readings published at QoS 1 arrive in the store with the right tags and values."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from support import (
    BASE_TS,
    PipelineProcess,
    expected_keys,
    fleet_messages,
    pipeline_env,
    publish,
    sample_count,
    site_scoped,
    stored_count,
    stored_keys,
    wait_for,
)

from meshwatch.localservers import Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration

READINGS = 5000


def test_readings_reach_the_embedded_store(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """5,000 readings over 50 assets at 5 sites are all in the embedded store, once each."""
    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    messages = fleet_messages(unique_topic, READINGS)
    publish(mosquitto, messages)
    db = data_dir / "meshwatch.db"
    wait_for(lambda: stored_count(db) >= READINGS, 60, "5,000 readings stored")
    code, _ = pipeline.stop()
    keys = stored_keys(db)
    assert code == 0
    assert len(keys) == READINGS
    assert set(keys) == expected_keys(messages)


def test_embedded_rows_keep_kind_and_metric_values(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Each stored row carries the kind tag and exactly the published metric values."""
    from ingest.embedded import EmbeddedStore

    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    publish(mosquitto, fleet_messages(unique_topic, 100))
    db = data_dir / "meshwatch.db"
    wait_for(lambda: stored_count(db) >= 100, 30, "100 readings stored")
    pipeline.stop()
    store = EmbeddedStore(db)
    rows = list(store.rows("telemetry", site="s3", asset="a3"))
    store.close()
    assert [(r["kind"], r["ts"], r["fields"]) for r in rows] == [
        ("cnc-mill", (BASE_TS + n) * 1_000_000, {"temp": n * 0.5, "rpm": float(n)}) for n in (3, 53)
    ]


def test_readings_reach_victoria_metrics_through_the_influx_api(
    mosquitto: Mosquitto,
    victoria_metrics: VictoriaMetrics,
    data_dir: Path,
    unique_topic: str,
    tmp_path: Path,
) -> None:
    """With an InfluxDB URL, 5,000 readings land in VictoriaMetrics with tags and values."""
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_INFLUX__URL=victoria_metrics.url,
        MESHWATCH_INFLUX__TOKEN="unused-by-victoria-metrics",
        MESHWATCH_INFLUX__ORG="meshwatch",
        MESHWATCH_INFLUX__BUCKET="telemetry",
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    # Sites are unique to this test, so the session's VictoriaMetrics holds no other series.
    messages = site_scoped(fleet_messages(unique_topic, READINGS), unique_topic)
    publish(mosquitto, messages)
    selector = f'{{__name__="telemetry_temp",site=~"{unique_topic}s.*"}}'

    wait_for(
        lambda: sample_count(victoria_metrics, selector) >= READINGS,
        60,
        "5,000 samples in VictoriaMetrics",
    )
    pipeline.stop()
    got: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for series in victoria_metrics.export(selector):
        labels = series["metric"]
        assert labels["kind"] == "cnc-mill"
        got[(labels["site"], labels["asset"])].update(
            zip(series["timestamps"], series["values"], strict=True)
        )
    want: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for topic, payload in messages:
        _, site, asset, _ = topic.split("/")
        doc = orjson.loads(payload)
        want[(site, asset)][doc["ts"]] = doc["metrics"]["temp"]
    assert got == want
