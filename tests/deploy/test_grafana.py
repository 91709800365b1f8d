"""Grafana: the provisioned data source and dashboard query only the storage schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
GRAFANA = ROOT / "deploy/grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards/meshwatch.json").read_text(encoding="utf-8"))

# docs/design.md §5: tags and fields per measurement (telemetry: any metric name).
SCHEMA: dict[str, tuple[set[str], set[str] | None]] = {
    "telemetry": ({"site", "asset", "kind"}, None),
    "anomaly": (
        {"site", "asset", "detector"},
        {"score", "threshold", "anomalous", "top_metric", "warming_up"},
    ),
    "alert": (
        {"site", "asset", "rule", "severity"},
        {"state", "value", "message", "id", "flapping"},
    ),
    "health": ({"site", "asset"}, {"status", "score", "reason"}),
}
FLUX_COLUMNS = {"_measurement", "_field", "_value", "_time", "_start", "_stop"}


def _queries() -> list[str]:
    found = [t["query"] for p in DASHBOARD["panels"] for t in p.get("targets", []) if "query" in t]
    found += [v["query"] for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    return found


def test_schema_table_in_design_md_is_the_one_checked_here() -> None:
    """docs/design.md's schema table names exactly the tags and fields checked here."""
    text = (ROOT / "docs/design.md").read_text(encoding="utf-8")
    for measurement, (tags, fields) in SCHEMA.items():
        row = re.search(rf"^\| `{measurement}` \|(.*)$", text, re.MULTILINE)
        assert row, measurement
        tag_cell, field_cell = row[1].split("|")[:2]
        assert set(re.findall(r"`(\w+)`", tag_cell)) == tags, measurement
        if fields is not None:
            assert set(re.findall(r"`(\w+)`", field_cell)) == fields, measurement


def test_every_query_names_only_schema_measurements_fields_and_tags() -> None:
    """Each Flux query names the stored measurements, their fields and their tags only."""
    schema = SCHEMA
    queries = _queries()
    assert len(queries) >= 8
    for query in queries:
        measurements = set(re.findall(r'r\._measurement\s*==\s*"([^"]+)"', query))
        assert measurements, f"query names no measurement:\n{query}"
        assert measurements <= set(schema), measurements
        tags = set().union(*(schema[m][0] for m in measurements))
        fields: set[str] = set()
        for field in re.findall(r'r\._field\s*==\s*"([^"]+)"', query):
            for m in measurements:
                allowed = schema[m][1]
                assert allowed is None or field in allowed, f"{m} has no field {field}"
            fields.add(field)
        columns = set(re.findall(r"\br\.(\w+)", query))
        for block in re.findall(r"(?:columns|rowKey|columnKey):\s*\[([^\]]*)\]", query):
            columns |= set(re.findall(r'"(\w+)"', block))
        columns |= set(re.findall(r'\btag:\s*"(\w+)"', query))
        pivoted = fields if "pivot(" in query else set()  # a pivot makes fields columns
        unknown = columns - tags - FLUX_COLUMNS - pivoted
        assert not unknown, f"{sorted(unknown)} are not tags of {sorted(measurements)}"


def test_dashboard_has_the_panels_of_issue_6_and_its_variables() -> None:
    """Fleet health, per-asset telemetry with score and threshold, alerts and pipeline metrics."""
    titles = {p["title"] for p in DASHBOARD["panels"]}
    for wanted in (
        "Health status per asset, by site",
        "Alert state per asset, by site",
        "Telemetry",
        "Anomaly score and threshold",
        "Alert timeline",
        "Readings stored per minute, by site",
        "Readings accepted and messages received per second",
        "Rejected messages per second, by reason",
        "Spool depth and back-pressure",
    ):
        assert wanted in titles, wanted
    assert [v["name"] for v in DASHBOARD["templating"]["list"]] == ["site", "asset"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            # Flux queries go to InfluxDB, PromQL expressions to Prometheus.
            wanted = "meshwatch-influxdb" if "query" in target else "meshwatch-prometheus"
            assert target["datasource"]["uid"] == wanted


def test_prometheus_datasource_points_at_the_prometheus_service() -> None:
    """The pipeline-metrics panels read the stack's Prometheus, which scrapes meshwatch."""
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yaml").read_text(encoding="utf-8")
    )
    (source,) = provisioning["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", "meshwatch-prometheus")
    assert source["url"] == "http://prometheus:9090"
    scrape = yaml.safe_load((GRAFANA.parent / "prometheus/prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["meshwatch:9464"]


def test_datasource_points_at_the_influxdb_service_with_flux() -> None:
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/influxdb.yaml").read_text(encoding="utf-8")
    )
    (source,) = provisioning["datasources"]
    assert source["type"] == "influxdb"
    assert source["uid"] == "meshwatch-influxdb"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["version"] == "Flux"
    assert source["secureJsonData"]["token"].startswith("${")  # from the environment


def test_dashboard_provider_reads_the_mounted_dashboards_folder() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/meshwatch.yaml").read_text(encoding="utf-8")
    )
    (entry,) = provider["providers"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{entry['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_every_prometheus_query_names_metrics_the_pipeline_exports() -> None:
    """Pipeline panels (rates, rejections, spool depth) chart metric families /metrics has."""
    from alerts.metrics import AlertMetrics
    from ingest.metrics import IngestMetrics

    registry = IngestMetrics().registry
    AlertMetrics(registry)
    exported = set()
    for family in registry.collect():
        exported.add(family.name + ("_total" if family.type == "counter" else ""))
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", []) if "expr" in t]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\b(meshwatch_\w+)", expr))
        assert names and names <= exported, (expr, names - exported)
