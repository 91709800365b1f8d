"""One anomaly alert per episode whose severity escalates and falls back (`alerts.escalation`).

An anomaly rule with ``escalate`` raises one alert: a warning that becomes critical while the
model's score holds the level's ``min_score``, and a warning again after readings in a row
below ``resolve_below``, under one id. Each change is notified once, drives the health map,
inhibition and routing, and survives a restart and a hand-over. The engine runs on a real
alerts.db fed three mills once a second (`plantkit.Plant`); here the rule escalates after 5
readings at 0.8 or more and falls back after 10 below 0.7, so the tests take seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from plantkit import CNC_A, CNC_B, FAST_ROUTE, QUICK_RULES, Plant, fast_route, rules_of
from pydantic import ValidationError

from alerts.base import Alert, Severity, State
from alerts.history.episodes import build
from alerts.lifecycle import Episode
from alerts.rules import AnomalyRule, default_rules
from alerts.sharedstate import PostgresAlertState
from alerts.silences import Silence
from ingest.query import Row

ESCALATING = """
rules:
  - name: anomaly
    type: anomaly
    severity: warning
    for_readings: 3
    resolve_after: 10
    resolve_below: 0.4
    escalate: {min_score: 0.8, resolve_below: 0.7, for_readings: 5}
  - {name: warm, type: limit, condition: bearing_temp_c > 80, severity: warning}
  - {name: offline, type: deadman, severity: critical, for: 5m}
"""
# Told at once, changes within a second, no repeat within a test: every notification is news.
ROUTE = fast_route(repeat="4h")
# Critical alerts page (mqtt); everything else goes to the log.
PAGER_ROUTE = """
receivers: [log]
group_by: ['...']
group_wait: 0s
group_interval: 1s
repeat_interval: 4h
routes:
  - {matchers: [severity=critical], receivers: [mqtt]}
"""
WARM = {"spindle_temp_c": 60.0, "bearing_temp_c": 85.0}


def _heard(p: Plant, rule: str = "anomaly") -> list[tuple[str, str, str]]:
    """What each receiver was told of `rule`'s alerts: (receiver, severity, state)."""
    return [
        (n.receiver, a["severity"], a["state"])
        for n in p.outbox()
        for a in n.alerts
        if a["rule"] == rule
    ]


def _escalate(p: Plant, key: tuple[str, str] = CNC_A) -> Alert:
    """A warning fires (flagged at 0.6), then the score holds 0.9 until it is critical."""
    p.run(10, faulty=[key], score=0.6)
    warning = p.open_alert("anomaly", key)
    assert warning.severity is Severity.WARNING
    p.run(5, faulty=[key], score=0.9)
    return warning


def _states(points: list[Any]) -> list[tuple[str, str, str]]:
    return [(x.tags["rule"], x.tags["severity"], x.fields["state"]) for x in points]


# --- one alert, two levels ------------------------------------------------------------------


def test_a_strong_score_escalates_the_alert_to_critical_under_its_id(
    plant: Callable[..., Plant],
) -> None:
    """The warning becomes critical, same id and start; its message is the failing one."""
    p = plant(ESCALATING, ROUTE)
    warning = _escalate(p)
    alert = p.open_alert("anomaly", CNC_A)
    assert (alert.id, alert.started_at, alert.severity) == (
        warning.id,
        warning.started_at,
        Severity.CRITICAL,
    )
    assert "cnc-1 at plant-a is failing: vibration_rms far out" in alert.message
    assert _states(p.points) == [
        ("anomaly", "warning", "firing"),
        ("anomaly", "critical", "escalated"),
    ]
    assert [a.rule for a in p.engine.open_alerts()] == ["anomaly"]


def test_four_readings_at_the_level_are_not_enough(plant: Callable[..., Plant]) -> None:
    """The level has its own on-delay: 4 strong readings, then a weaker one, stay a warning."""
    p = plant(ESCALATING, ROUTE)
    p.run(10, faulty=[CNC_A], score=0.6)
    p.run(4, faulty=[CNC_A], score=0.9)
    p.run(1, faulty=[CNC_A], score=0.75)
    p.run(4, faulty=[CNC_A], score=0.9)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.WARNING


def test_a_fault_strong_from_the_start_fires_critical_once(plant: Callable[..., Plant]) -> None:
    """Defaults: strong from its first reading, the alert fires critical, told once each."""
    p = plant(default_rules(), ROUTE)
    p.run(200, faulty=[CNC_A], score=0.9)
    assert _states(p.points) == [("anomaly", "critical", "firing")]
    assert _heard(p) == [("mqtt", "critical", "firing"), ("log", "critical", "firing")]


def test_escalation_and_fall_back_are_notified_once_each(plant: Callable[..., Plant]) -> None:
    """Each receiver hears it fire, become critical, fall back to a warning and end: once each."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    p.run(20, faulty=[CNC_A], score=0.9)
    p.run(9, faulty=[CNC_A], score=0.6)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.CRITICAL  # 9 below 0.7: not yet
    p.run(1, faulty=[CNC_A], score=0.6)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.WARNING
    p.run(20, faulty=[CNC_A], score=0.6)
    p.run(20)
    assert _states(p.points) == [
        ("anomaly", "warning", "firing"),
        ("anomaly", "critical", "escalated"),
        ("anomaly", "warning", "deescalated"),
        ("anomaly", "warning", "resolved"),
    ]
    for receiver in ("mqtt", "log"):
        assert [h[1:] for h in _heard(p) if h[0] == receiver] == [
            ("warning", "firing"),
            ("critical", "firing"),
            ("warning", "firing"),
            ("warning", "resolved"),
        ]
    assert len({a["id"] for n in p.outbox() for a in n.alerts}) == 1


def test_a_score_between_the_levels_holds_critical(plant: Callable[..., Plant]) -> None:
    """Hysteresis: at 0.75, neither 0.8 nor below 0.7, the critical alert stays critical."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    p.run(5, faulty=[CNC_A], score=0.6)
    p.run(30, faulty=[CNC_A], score=0.75)
    p.run(5, faulty=[CNC_A], score=0.6)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.CRITICAL


def test_a_route_for_critical_alerts_hears_the_escalation(plant: Callable[..., Plant]) -> None:
    """The pager route (severity=critical) hears it escalate, fall back and end."""
    p = plant(ESCALATING, PAGER_ROUTE)
    p.run(10, faulty=[CNC_A], score=0.6)
    assert _heard(p) == [("log", "warning", "firing")]
    p.run(5, faulty=[CNC_A], score=0.9)
    # The pager hears it first now; the log, which heard the warning, hears the change.
    assert sorted(_heard(p)[1:]) == [("log", "critical", "firing"), ("mqtt", "critical", "firing")]
    p.run(10, faulty=[CNC_A], score=0.6)  # falls back
    p.run(30)  # resolves
    assert [h for h in _heard(p) if h[0] == "mqtt"] == [
        ("mqtt", "critical", "firing"),
        ("mqtt", "warning", "firing"),
        ("mqtt", "warning", "resolved"),
    ]
    assert [h for h in _heard(p) if h[0] == "log"][-1] == ("log", "warning", "resolved")


def test_a_silence_of_warnings_does_not_hold_back_the_escalation(
    plant: Callable[..., Plant],
) -> None:
    """Muting follows the current severity: silenced as a warning, heard once critical."""
    p = plant(ESCALATING, ROUTE)
    silence = Silence.create(
        ["severity=warning"], p.wall.now, p.wall.now + 3600, "ana", "warnings to the shift log"
    )
    p.desk.add_silence(silence)
    _escalate(p)
    assert _heard(p) == [("mqtt", "critical", "firing"), ("log", "critical", "firing")]


# --- what the level drives ------------------------------------------------------------------


def test_the_health_map_follows_the_level(plant: Callable[..., Plant]) -> None:
    """The asset is warning, critical while its alert is, warning again, then ok."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    p.run(10, faulty=[CNC_A], score=0.6)
    p.run(30)
    statuses = [h["status"] for h in p.health(CNC_A)]
    assert statuses == ["ok", "warning", "critical", "warning", "ok"]
    critical = next(h for h in p.health(CNC_A) if h["status"] == "critical")
    assert critical["alerts"][0]["severity"] == "critical"
    assert "is failing" in critical["reason"]


def test_a_critical_asset_gets_reroute_advice(plant: Callable[..., Plant]) -> None:
    """Once its alert is critical, the asset's work should move: advice is published."""
    p = plant(ESCALATING, ROUTE)
    p.run(10, faulty=[CNC_A], score=0.6)
    assert p.advice(CNC_A) == []
    p.run(5, faulty=[CNC_A], score=0.9)
    assert p.advice(CNC_A)[-1].json()["status"] == "critical"


def test_a_critical_level_inhibits_the_assets_lesser_alerts(plant: Callable[..., Plant]) -> None:
    """While critical, the asset's warning (``warm``) is held back; heard once it falls back."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    p.run(5, faulty=[CNC_A], score=0.9, metrics={CNC_A: WARM})
    assert p.open_alert("warm", CNC_A).state is State.FIRING
    assert _heard(p, "warm") == []
    p.run(12, faulty=[CNC_A], score=0.6, metrics={CNC_A: WARM})  # back to a warning
    assert _heard(p, "warm") == [("mqtt", "warning", "firing"), ("log", "warning", "firing")]


def test_metrics_count_the_alert_at_its_level(plant: Callable[..., Plant]) -> None:
    """The firing gauge moves from warning to critical; the change is counted."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    registry = p.engine.metrics.registry

    def firing(severity: str) -> float | None:
        return registry.get_sample_value("meshwatch_alerts_firing", {"severity": severity})

    assert (firing("warning"), firing("critical")) == (0.0, 1.0)
    changes = {"rule": "anomaly", "severity": "critical"}
    assert registry.get_sample_value("meshwatch_alert_level_changes_total", changes) == 1.0


def test_history_keeps_the_changes_of_level_with_their_times(plant: Callable[..., Plant]) -> None:
    """Rebuilt from the store's records, the episode lists its levels and was critical."""
    p = plant(ESCALATING, ROUTE)
    _escalate(p)
    p.run(10, faulty=[CNC_A], score=0.6)
    rows = [Row(x.measurement, dict(x.tags), dict(x.fields), x.ts) for x in p.points]
    [episode] = build(rows)
    assert episode.severity == "critical"
    assert [(c.severity, c.at) for c in episode.levels] == [
        ("critical", p.points[1].ts),
        ("warning", p.points[2].ts),
    ]
    assert [c["severity"] for c in episode.to_json(p.points[-1].ts)["levels"]] == [
        "critical",
        "warning",
    ]


# --- restarts and hand-overs ----------------------------------------------------------------


def test_the_level_survives_a_crash(plant: Callable[..., Plant]) -> None:
    """Killed while critical: the restarted engine holds the same alert, critical, untold again."""
    p = plant(ESCALATING, ROUTE)
    warning = _escalate(p)
    told = len(p.outbox())
    p.crash()
    alert = p.open_alert("anomaly", CNC_A)
    assert (alert.id, alert.severity) == (warning.id, Severity.CRITICAL)
    p.run(10, faulty=[CNC_A], score=0.9)
    assert len(p.outbox()) == told
    p.run(10, faulty=[CNC_A], score=0.6)
    assert _heard(p)[-2:] == [("mqtt", "warning", "firing"), ("log", "warning", "firing")]


def test_a_crash_does_not_count_a_broken_run_towards_the_level(
    plant: Callable[..., Plant],
) -> None:
    """4 strong readings, a weaker one, a crash: 4 more strong ones are not 5 in a row."""
    p = plant(ESCALATING, ROUTE)
    p.run(10, faulty=[CNC_A], score=0.6)
    p.run(4, faulty=[CNC_A], score=0.9)
    p.run(1, faulty=[CNC_A], score=0.75)
    p.crash()
    p.run(4, faulty=[CNC_A], score=0.9)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.WARNING


def test_state_saved_before_levels_loads_at_the_rules_severity() -> None:
    """An episode saved by an older version (no level, no counts) is at its base severity."""
    alert = Alert("e1", "anomaly", Severity.WARNING, "s", "a", None, State.FIRING, 0, 0.6, "")
    saved = Episode(alert, 0, seen=5).to_state()
    for key in ("escalated", "rise", "rise_since", "fall"):
        del saved[key]
    ep = Episode.from_state(saved)
    assert (ep.escalated, ep.rise, ep.fall, ep.alert.severity) == (False, 0, 0, Severity.WARNING)


@pytest.mark.integration
def test_the_level_moves_with_the_asset_to_another_instance(
    plant: Callable[..., Plant], postgres_url: str
) -> None:
    """Handed over while critical: it stays critical, untold again; its fall back told once."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def shared(instance: str) -> Callable[[], PostgresAlertState]:
        return lambda: PostgresAlertState(postgres_url, instance, table_prefix=prefix)

    a = plant(ESCALATING, ROUTE, name="a.db", shared=shared("mw-a"), instance="mw-a")
    b = plant(ESCALATING, ROUTE, (CNC_B,), "b.db", shared=shared("mw-b"), instance="mw-b")
    warning = _escalate(a, CNC_B)
    a.engine.release({CNC_B})
    b.t = a.t
    b.run(10, faulty=[CNC_B], score=0.9)
    held = b.open_alert("anomaly", CNC_B)
    assert (held.id, held.severity) == (warning.id, Severity.CRITICAL)
    assert b.told() == []
    b.run(10, faulty=[CNC_B], score=0.6)
    assert _heard(b) == [("mqtt", "warning", "firing"), ("log", "warning", "firing")]


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            {"escalate": {"min_score": 0.45, "resolve_below": 0.3}},
            r"escalate.min_score \(0.45\) must be above the flag's score \(0.5\)",
        ),
        (
            {"min_score": 0.7, "escalate": {"min_score": 0.6, "resolve_below": 0.5}},
            r"escalate.min_score \(0.6\) must be above the rule's min_score \(0.7\)",
        ),
        (
            {"escalate": {"min_score": 0.8, "resolve_below": 0.8}},
            r"escalate.resolve_below \(0.8\) must be below escalate.min_score \(0.8\)",
        ),
        (
            {"severity": "critical", "escalate": {"min_score": 0.8, "resolve_below": 0.7}},
            r"escalate.severity \(critical\) must be above the rule's severity \(critical\)",
        ),
        ({"escalate": {"min_score": 0.8}}, r"escalate.resolve_below\n  Field required"),
        (
            {"escalate": {"min_score": 0.8, "resolve_below": 0.7, "for": "soon"}},
            r"invalid duration 'soon'",
        ),
        (
            {"escalate": {"min_score": 0.8, "resolve_below": 0.7, "message": "{nope}"}},
            r"nope",
        ),
        (
            {"escalate": {"min_score": 0.8, "resolve_below": 0.7, "min_scor": 0.9}},
            r"escalate.min_scor\n  Extra inputs are not permitted",
        ),
    ],
    ids=[
        "below-the-flag",
        "below-min-score",
        "no-hysteresis",
        "not-higher",
        "missing-level",
        "bad-duration",
        "bad-template",
        "misspelt",
    ],
)
def test_an_invalid_escalation_is_refused(rule: dict[str, Any], problem: str) -> None:
    """A level that is not above the alert, or without hysteresis, fails with why."""
    with pytest.raises(ValidationError, match=problem):
        AnomalyRule.model_validate({"name": "anomaly", **rule})


def test_an_escalation_takes_the_rules_timing_unless_it_sets_its_own() -> None:
    """``for``, ``for_readings`` and ``resolve_after`` default to the rule's."""
    rule = AnomalyRule.model_validate(
        {
            "name": "anomaly",
            "for": "2m",
            "resolve_after": 7,
            "escalate": {"min_score": 0.8, "resolve_below": 0.7, "for": "5m"},
        }
    )
    assert rule.level is not None
    assert (rule.level.hold_ns, rule.level.hits, rule.level.resolve_after) == (
        300 * 10**9,
        1,
        7,
    )


def test_the_default_rule_escalates_after_two_minutes_at_its_level(
    plant: Callable[..., Plant],
) -> None:
    """Defaults: a warning after 2 minutes flagged; critical after 2 more minutes at 0.8."""
    p = plant(default_rules(), FAST_ROUTE)
    p.run(130, faulty=[CNC_A], score=0.6)  # fires at 121 s
    p.run(120, faulty=[CNC_A], score=0.9)  # 131 s to 250 s: 1m59s at 0.9
    assert p.open_alert("anomaly", CNC_A).severity is Severity.WARNING
    p.run(1, faulty=[CNC_A], score=0.9)
    assert p.open_alert("anomaly", CNC_A).severity is Severity.CRITICAL


def test_the_old_two_rule_config_raises_two_alerts_as_before(
    plant: Callable[..., Plant],
) -> None:
    """Two anomaly rules (the old defaults' shape): a warning and a critical alert, no levels."""
    p = plant(QUICK_RULES, ROUTE)
    p.run(3, faulty=[CNC_A], score=0.9)
    p.run(10, faulty=[CNC_A], score=0.9)
    assert _states(p.points) == [
        ("anomaly", "warning", "firing"),
        ("anomaly_severe", "critical", "firing"),
    ]
    assert {a.rule: a.severity for a in p.engine.open_alerts()} == {
        "anomaly": Severity.WARNING,
        "anomaly_severe": Severity.CRITICAL,
    }


def test_an_alert_of_a_rule_no_longer_configured_resolves_at_start_up(
    plant: Callable[..., Plant],
) -> None:
    """Upgrading to the escalating default: the old ``anomaly_severe`` alert ends, told once."""
    p = plant(QUICK_RULES, ROUTE)
    p.run(13, faulty=[CNC_A], score=0.9)
    severe = p.open_alert("anomaly_severe", CNC_A)
    p.rules = rules_of(ESCALATING)
    p.restart()
    assert [a.rule for a in p.engine.open_alerts()] == ["anomaly"]
    p.run(1, faulty=[CNC_A], score=0.9)
    assert _heard(p, "anomaly_severe")[-2:] == [
        ("mqtt", "critical", "resolved"),
        ("log", "critical", "resolved"),
    ]
    assert severe.id not in {a.id for a in p.engine.open_alerts()}
