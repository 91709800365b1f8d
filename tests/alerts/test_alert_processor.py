"""The alerting step of the pipeline: readings and their scores in, alert records out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.route import Route, RouteSpec
from alerts.rules import AnomalyRule, LimitRule
from alerts.state import AlertState
from ingest.base import Point, Reading
from models.base import AnomalyPoint, Verdict

T0 = 1_767_225_600_000_000_000
SECOND = 1_000_000_000


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[AlertProcessor]:
    rules = [
        AnomalyRule(name="anomaly", for_readings=2, resolve_after=2),
        LimitRule(name="hot", condition="temp > 90", severity="critical"),
    ]
    route = Route.build(RouteSpec(receivers=["log"]))
    engine = AlertEngine(rules, route, AlertState(tmp_path / "alerts.db"), metrics=AlertMetrics())
    processor = AlertProcessor(engine)
    yield processor
    processor.close()


def _alerts(points: list[Point]) -> list[Point]:
    return [p for p in points if p.measurement == "alert"]


def _reading(n: int, asset: str = "cnc-1", temp: float = 60.0) -> Reading:
    return Reading("plant-a", asset, "cnc-mill", T0 + n * SECOND, {"temp": temp})


def _score(r: Reading, anomalous: bool) -> Point:
    verdict = Verdict(0.9 if anomalous else 0.1, 0.5, anomalous, False, "temp")
    return AnomalyPoint.of(verdict, {"site": r.site, "asset": r.asset, "detector": "default"}, r.ts)


def test_scores_of_the_batch_drive_the_anomaly_rule(processor: AlertProcessor) -> None:
    """Anomalous verdicts from the scoring step fire the anomaly rule, as alert records."""
    readings = [_reading(n) for n in range(3)]
    made = processor.process(readings, [_score(r, True) for r in readings])
    points = [p for p in made if p.measurement == "alert"]
    assert [(p.tags["rule"], p.fields["state"]) for p in points] == [("anomaly", "firing")]
    assert points[0].fields["value"] == pytest.approx(0.9)


def test_a_reading_left_unscored_is_judged_by_the_limit_rules_only(
    processor: AlertProcessor,
) -> None:
    """Without a verdict (its model failed) a reading still meets the limits, not the anomaly."""
    readings = [_reading(0, temp=95.0), _reading(0, asset="cnc-2", temp=95.0)]
    # the scoring step scored only the second reading
    points = _alerts(processor.process(readings, [_score(readings[1], True)]))
    assert sorted((p.tags["asset"], p.tags["rule"]) for p in points) == [
        ("cnc-1", "hot"),
        ("cnc-2", "hot"),
    ]


def test_without_models_every_reading_meets_the_limits(processor: AlertProcessor) -> None:
    """Models off: no anomaly points at all; the limit rule still fires."""
    points = _alerts(processor.process([_reading(0, temp=91.0)]))
    assert [p.tags["rule"] for p in points] == ["hot"]


def test_points_of_other_measurements_are_not_verdicts(processor: AlertProcessor) -> None:
    """Only ``anomaly`` points count as verdicts; an ``alert`` point of another step is not."""
    r = _reading(0)
    other = Point(
        "alert",
        {"site": r.site, "asset": r.asset, "rule": "x", "severity": "info"},
        {"state": "firing"},
        r.ts,
    )
    assert _alerts(processor.process([r], [other])) == []


def test_tick_returns_the_records_passing_time_caused(processor: AlertProcessor) -> None:
    """Nothing silent and no deadman rule: a tick stores nothing."""
    processor.process([_reading(0)])
    assert processor.tick() == []


def test_each_health_change_is_a_health_record(processor: AlertProcessor) -> None:
    """A new asset is ok, then critical when its limit fires: a ``health`` record per change."""
    first = processor.process([_reading(0)])
    then = processor.process([_reading(1, temp=95.0)])
    health = [p for p in [*first, *then] if p.measurement == "health"]
    assert [(p.tags, p.fields["status"], p.ts) for p in health] == [
        ({"site": "plant-a", "asset": "cnc-1"}, "ok", T0),
        ({"site": "plant-a", "asset": "cnc-1"}, "critical", T0 + SECOND),
    ]
