"""Opt-in: a real InfluxDB 2.x (MESHWATCH_TEST_INFLUX_URL and _TOKEN) takes what we write.

InfluxDB 2.x cannot be installed here, so this runs only where one is reachable:
``MESHWATCH_TEST_INFLUX_URL``, ``MESHWATCH_TEST_INFLUX_TOKEN``, and optionally
``MESHWATCH_TEST_INFLUX_ORG`` / ``MESHWATCH_TEST_INFLUX_BUCKET``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import PipelineProcess, fleet_messages, pipeline_env, publish, site_scoped, wait_for

from meshwatch.localservers import Mosquitto

# Read at import: the autouse clean_environ fixture removes MESHWATCH_* before each test.
URL = os.environ.get("MESHWATCH_TEST_INFLUX_URL")
TOKEN = os.environ.get("MESHWATCH_TEST_INFLUX_TOKEN", "")
ORG = os.environ.get("MESHWATCH_TEST_INFLUX_ORG", "meshwatch")
BUCKET = os.environ.get("MESHWATCH_TEST_INFLUX_BUCKET", "meshwatch")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.influxdb,
    pytest.mark.skipif(URL is None, reason="set MESHWATCH_TEST_INFLUX_URL to a real InfluxDB 2.x"),
]


def test_readings_scores_and_alerts_reach_a_real_influxdb_and_read_back_through_flux(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Readings, their scores and the alerts they raise are queryable in InfluxDB with Flux."""
    from influxdb_client.client.influxdb_client import InfluxDBClient

    assert URL is not None
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_INFLUX__URL=URL,
        MESHWATCH_INFLUX__TOKEN=TOKEN,
        MESHWATCH_INFLUX__ORG=ORG,
        MESHWATCH_INFLUX__BUCKET=BUCKET,
        # temp is n * 0.5 for reading n: past 90 from the 182nd reading on, so this fires
        MESHWATCH_ALERTS__RULES='[{"name": "hot", "type": "limit", "condition": "temp > 90"}]',
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    messages = site_scoped(fleet_messages(unique_topic, 200), unique_topic)
    publish(mosquitto, messages)
    flux = f"""
        from(bucket: "{BUCKET}")
          |> range(start: 2025-12-31T00:00:00Z, stop: 2026-01-02T00:00:00Z)
          |> filter(fn: (r) => r._measurement == "telemetry" and r._field == "temp")
          |> filter(fn: (r) => r.site =~ /^{unique_topic}/)
    """
    client = InfluxDBClient(url=URL, token=TOKEN, org=ORG)

    def rows() -> list[tuple[str, str, str, float]]:
        tables = client.query_api().query(flux)
        return [
            (r["site"], r["asset"], r["kind"], r.get_value())
            for table in tables
            for r in table.records
        ]

    def values(measurement: str, field: str) -> list[object]:
        query = flux.replace('"telemetry"', f'"{measurement}"').replace('"temp"', f'"{field}"')
        tables = client.query_api().query(query)
        return [r.get_value() for table in tables for r in table.records]

    wait_for(lambda: len(rows()) >= 200, 60, "200 readings in InfluxDB")
    wait_for(lambda: len(values("anomaly", "score")) >= 200, 60, "200 scores")
    wait_for(lambda: "firing" in values("alert", "state"), 60, "the firing alert")
    got = rows()
    scores = values("anomaly", "score")
    client.close()
    pipeline.stop()
    assert len(got) == 200
    assert {kind for _, _, kind, _ in got} == {"cnc-mill"}
    assert sorted(v for *_, v in got) == [n * 0.5 for n in range(200)]
    assert len(scores) == 200
    assert all(0.0 <= float(v) <= 1.0 for v in scores)


def test_alert_history_reads_back_from_a_real_influxdb_through_the_pipeline(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """``meshwatch alerts history`` asks the pipeline, which reads InfluxDB in Flux."""
    import subprocess
    import sys

    import orjson

    assert URL is not None
    prefix = f"{unique_topic}-mw"
    env = pipeline_env(
        mosquitto,
        data_dir,
        unique_topic,
        MESHWATCH_MQTT__PREFIX=prefix,
        MESHWATCH_INFLUX__URL=URL,
        MESHWATCH_INFLUX__TOKEN=TOKEN,
        MESHWATCH_INFLUX__ORG=ORG,
        MESHWATCH_INFLUX__BUCKET=BUCKET,
        MESHWATCH_ALERTS__RULES='[{"name": "hot", "type": "limit", "condition": "temp > 90"}]',
    )
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    publish(mosquitto, site_scoped(fleet_messages(unique_topic, 200), unique_topic))
    cli = {
        **os.environ,
        "MESHWATCH_MQTT__HOST": mosquitto.host,
        "MESHWATCH_MQTT__PORT": str(mosquitto.port),
        "MESHWATCH_MQTT__PREFIX": prefix,
    }

    def episodes() -> list[dict[str, object]]:
        done = subprocess.run(
            [sys.executable, "-m", "meshwatch", "alerts", "history", "--json", "--since", "30d"],
            env=cli,
            capture_output=True,
            text=True,
            timeout=60,
        )
        found: list[dict[str, object]] = (
            orjson.loads(done.stdout)["episodes"] if done.returncode == 0 else []
        )
        return found

    wait_for(lambda: bool(episodes()), 60, "the firing episode in the history")
    found = episodes()
    pipeline.stop()
    assert {(e["rule"], e["open"]) for e in found} == {("hot", True)}
    assert all(e["notifications"] for e in found)
