"""Unit tests of the alert rules (`alerts.rules`) and their message templates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from alerts.base import Observation, Severity
from alerts.errors import RulesError
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule, default_rules
from alerts.templates import FIELDS, MessageTemplate

# 2026-01-01T00:00:00Z in ns: a fixed past.
T0 = 1_767_225_600_000_000_000
CNC = {"site": "plant-a", "asset": "cnc-1", "kind": "cnc-mill"}


def _obs(**overrides: Any) -> Observation:
    values: dict[str, Any] = {
        "site": "plant-a",
        "asset": "cnc-1",
        "kind": "cnc-mill",
        "ts": T0,
        "metrics": {"spindle_temp_c": 60.0},
        "score": 0.1,
        "anomalous": False,
        "top_metric": None,
        "warming_up": False,
    }
    values.update(overrides)
    return Observation(**values)


# --- limit rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "metric", "op", "value"),
    [
        ("spindle_temp_c > 90", "spindle_temp_c", ">", 90.0),
        ("spindle_temp_c >= 90", "spindle_temp_c", ">=", 90.0),
        ("pressure_bar < 1.5", "pressure_bar", "<", 1.5),
        ("pressure_bar <= -2", "pressure_bar", "<=", -2.0),
        ("door.open == 1", "door.open", "==", 1.0),
        ("mode != 0", "mode", "!=", 0.0),
        ("rpm>1.2e3", "rpm", ">", 1200.0),
        ("  rpm   <   .5  ", "rpm", "<", 0.5),
    ],
    ids=["gt", "ge", "lt", "le-negative", "eq-dotted-metric", "ne", "no-spaces-exponent", "spaces"],
)
def test_limit_condition_is_read_into_metric_op_and_value(
    condition: str, metric: str, op: str, value: float
) -> None:
    """A condition string gives the rule its metric, operator and number."""
    rule = LimitRule(name="limit", condition=condition)
    assert (rule.metric, rule.op, rule.value) == (metric, op, value)


@pytest.mark.parametrize(
    ("condition", "reading", "expected"),
    [
        ("t > 90", 90.0, False),
        ("t > 90", 90.5, True),
        ("t >= 90", 90.0, True),
        ("t >= 90", 89.9, False),
        ("t < 90", 90.0, False),
        ("t < 90", 89.9, True),
        ("t <= 90", 90.0, True),
        ("t <= 90", 90.1, False),
        ("t == 90", 90.0, True),
        ("t == 90", 90.1, False),
        ("t != 90", 90.0, False),
        ("t != 90", 90.1, True),
    ],
    ids=[
        "gt-at-limit",
        "gt-above",
        "ge-at-limit",
        "ge-below",
        "lt-at-limit",
        "lt-below",
        "le-at-limit",
        "le-above",
        "eq-equal",
        "eq-other",
        "ne-equal",
        "ne-other",
    ],
)
def test_limit_condition_compares_the_reading_with_the_value(
    condition: str, reading: float, expected: bool
) -> None:
    """Each of the six operators compares the metric with the limit as written."""
    rule = LimitRule(name="limit", condition=condition)
    assert rule.active(_obs(metrics={"t": reading})) is expected


def test_limit_can_be_written_as_metric_op_and_value() -> None:
    """Instead of a condition string, a limit takes ``metric``, ``op`` and ``value``."""
    rule = LimitRule(name="cold", metric="t", op="<", value=5)
    assert (rule.active(_obs(metrics={"t": 4.0})), rule.active(_obs(metrics={"t": 6.0}))) == (
        True,
        False,
    )


@pytest.mark.parametrize(
    "condition",
    [
        "spindle_temp_c >> 90",
        "spindle_temp_c = 90",
        "spindle_temp_c > hot",
        "> 90",
        "spindle_temp_c 90",
        "spindle_temp_c >",
        "",
        "spindle temp > 90",
    ],
    ids=[
        "double-op",
        "single-equals",
        "not-a-number",
        "no-metric",
        "no-op",
        "no-value",
        "empty",
        "space-in-metric",
    ],
)
def test_bad_limit_condition_is_rejected(condition: str) -> None:
    """A condition that is not ``metric op number`` fails, showing how to write it."""
    with pytest.raises(ValidationError, match="write it as 'metric op number'"):
        LimitRule(name="limit", condition=condition)


def test_limit_without_a_condition_or_metric_is_rejected() -> None:
    """A limit rule needs something to compare."""
    with pytest.raises(ValidationError, match="needs a condition, or a metric"):
        LimitRule(name="limit")


def test_limit_says_nothing_about_a_reading_without_its_metric() -> None:
    """A reading that lacks the metric neither holds nor breaks the condition."""
    rule = LimitRule(name="hot", condition="spindle_temp_c > 90")
    assert rule.active(_obs(metrics={"vibration_rms": 0.4})) is None


def test_limit_for_is_a_duration_in_seconds() -> None:
    """``for`` takes a duration string."""
    rule = LimitRule.model_validate({"name": "hot", "condition": "t > 90", "for": "1m30s"})
    assert rule.for_ == 90.0


# --- anomaly rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anomalous", "warming_up", "expected"),
    [(True, False, True), (False, False, False), (True, True, False)],
    ids=["flagged", "not-flagged", "flagged-while-warming-up"],
)
def test_anomaly_condition_is_the_models_flag(
    anomalous: bool, warming_up: bool, expected: bool
) -> None:
    """The condition holds for a flagged reading, never while the model warms up."""
    rule = AnomalyRule(name="anomaly")
    assert rule.active(_obs(score=0.9, anomalous=anomalous, warming_up=warming_up)) is expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.95, True), (0.8, True), (0.79, False), (None, False)],
    ids=["above", "at-min-score", "below", "unscored"],
)
def test_anomaly_min_score_demands_a_strong_flag(score: float | None, expected: bool) -> None:
    """With ``min_score``, a flagged reading counts only when it scores at least that."""
    rule = AnomalyRule(name="severe", min_score=0.8)
    assert rule.active(_obs(score=score, anomalous=True)) is expected


@pytest.mark.parametrize("min_score", [0.0, -0.1, 1.5], ids=["zero", "negative", "above-one"])
def test_anomaly_min_score_outside_zero_to_one_is_rejected(min_score: float) -> None:
    """A score is in (0, 1]; a min_score outside it can never mean anything."""
    with pytest.raises(ValidationError, match="min_score"):
        AnomalyRule(name="severe", min_score=min_score)


@pytest.mark.parametrize(
    "field", ["for_readings", "resolve_after"], ids=["for_readings", "resolve_after"]
)
def test_anomaly_counts_must_be_positive(field: str) -> None:
    """N consecutive readings and M normal readings are at least one each."""
    with pytest.raises(ValidationError, match=field):
        AnomalyRule.model_validate({"name": "anomaly", field: 0})


# --- alarm hygiene: hysteresis, minimum firing duration, flap damping ---------------------


@pytest.mark.parametrize(
    ("score", "anomalous", "clears"),
    [(0.3, False, True), (0.45, False, False), (0.55, True, False), (None, False, True)],
    ids=["below-the-level", "in-the-deadband", "flagged", "unscored"],
)
def test_anomaly_reading_clears_only_below_resolve_below(
    score: float | None, anomalous: bool, clears: bool
) -> None:
    """Hysteresis: a reading counts towards resolving only when it scores below 0.4."""
    rule = AnomalyRule(name="anomaly")
    assert rule.clears(_obs(score=score, anomalous=anomalous)) is clears


def test_resolve_below_of_one_clears_on_any_reading_not_flagged() -> None:
    """``resolve_below: 1`` gives the old behaviour: any reading not flagged clears."""
    rule = AnomalyRule(name="anomaly", resolve_below=1)
    assert rule.clears(_obs(score=0.49)) is True


@pytest.mark.parametrize("level", [-0.1, 1.5], ids=["negative", "above-one"])
def test_resolve_below_outside_zero_to_one_is_rejected(level: float) -> None:
    """Scores are in [0, 1): a level outside it is a mistake."""
    with pytest.raises(ValidationError, match="resolve_below"):
        AnomalyRule(name="anomaly", resolve_below=level)


def test_keep_firing_for_is_a_duration_in_seconds_and_nanoseconds() -> None:
    """``keep_firing_for: 5m`` is 300 s, kept in ns for the per-reading path."""
    rule = LimitRule.model_validate({"name": "hot", "condition": "t > 90", "keep_firing_for": "5m"})
    assert (rule.keep_firing_for, rule.keep_ns) == (300.0, 300 * 10**9)


def test_flap_damping_is_on_by_default_with_the_documented_figures() -> None:
    """More than 3 firings in 30 minutes hold the alert until quiet for 15 minutes."""
    policy = AnomalyRule(name="anomaly").flapping
    assert policy is not None
    assert (policy.firings, policy.window, policy.quiet) == (3, 1800.0, 900.0)


@pytest.mark.parametrize("off", [False, None], ids=["false", "null"])
def test_flap_damping_can_be_turned_off(off: bool | None) -> None:
    """``flapping: false`` (or null) turns flap damping off for the rule."""
    rule = LimitRule.model_validate({"name": "hot", "condition": "t > 90", "flapping": off})
    assert (rule.flapping, rule.quiet_ns) == (None, 0)


def test_flap_damping_figures_can_be_set() -> None:
    """``flapping: {firings, window, quiet}`` sets the rule's own figures."""
    rule = AnomalyRule.model_validate(
        {"name": "anomaly", "flapping": {"firings": 5, "window": "1h", "quiet": "20m"}}
    )
    assert rule.flapping is not None
    assert (rule.flapping.firings, rule.flapping.window, rule.quiet_ns) == (5, 3600.0, 1200 * 10**9)


def test_flap_damping_with_an_unknown_key_is_rejected() -> None:
    """A misspelt flap damping option fails instead of being ignored."""
    with pytest.raises(ValidationError, match="quite"):
        AnomalyRule.model_validate({"name": "anomaly", "flapping": {"quite": "5m"}})


def test_default_anomaly_rule_keeps_firing_five_minutes_with_hysteresis() -> None:
    """The default: 5 minutes minimum; resolve below 0.4; critical from 0.8 down to below 0.7."""
    [anomaly] = (r for r in default_rules() if isinstance(r, AnomalyRule))
    assert (anomaly.keep_firing_for, anomaly.resolve_below) == (300.0, 0.4)
    assert anomaly.level is not None
    level = anomaly.level
    assert (level.severity, level.min_score, level.resolve_below, level.resolve_after) == (
        Severity.CRITICAL,
        0.8,
        0.7,
        10,
    )


def test_default_anomaly_rule_waits_for_two_minutes_of_flags_and_of_strong_ones() -> None:
    """The on-delay (ISA-18.2): 2 minutes flagged to fire, 2 minutes at 0.8 to escalate."""
    [anomaly] = (r for r in default_rules() if isinstance(r, AnomalyRule))
    assert anomaly.level is not None
    assert (anomaly.for_, anomaly.for_readings) == (120.0, 1)
    assert (anomaly.level.hold_ns, anomaly.level.hits) == (120 * 10**9, 1)


# --- deadman rules --------------------------------------------------------------------------


def test_deadman_defaults_to_five_minutes_critical_per_site() -> None:
    """A deadman rule with no options: 5 minutes, critical, site-wide alerts on."""
    rule = DeadmanRule(name="offline")
    assert (rule.for_, rule.severity, rule.site) == (300.0, Severity.CRITICAL, True)


def test_deadman_for_must_be_positive() -> None:
    """No data for zero seconds is every asset all the time: refused."""
    with pytest.raises(ValidationError, match="for"):
        DeadmanRule.model_validate({"name": "offline", "for": 0})


# --- every rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["bad name", "", "x" * 65, "naïve"], ids=["space", "empty", "too-long", "non-ascii"]
)
def test_rule_name_must_be_an_id(name: str) -> None:
    """Rule names are IDs, as they appear in topics and tags."""
    with pytest.raises(ValidationError, match="rule name"):
        AnomalyRule(name=name)


@pytest.mark.parametrize(
    "severity", ["info", "warning", "critical"], ids=["info", "warning", "critical"]
)
def test_rule_takes_each_severity(severity: str) -> None:
    """Every rule has one of the three severities."""
    assert LimitRule(name="hot", condition="t > 90", severity=severity).severity == severity


def test_unknown_severity_is_rejected() -> None:
    """Only info, warning and critical exist."""
    with pytest.raises(ValidationError, match="severity"):
        LimitRule(name="hot", condition="t > 90", severity="urgent")


def test_unknown_rule_option_is_rejected() -> None:
    """A misspelt option fails instead of being ignored."""
    with pytest.raises(ValidationError, match="for_reading"):
        AnomalyRule.model_validate({"name": "anomaly", "for_reading": 3})


def test_default_rules_watch_anomalies_and_silence() -> None:
    """With no configuration: one anomaly rule (a warning that escalates), and offline."""
    assert [(r.name, r.type, r.severity) for r in default_rules()] == [
        ("anomaly", "anomaly", Severity.WARNING),
        ("offline", "deadman", Severity.CRITICAL),
    ]


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matchers", "labels", "expected"),
    [
        ([], CNC, True),
        (["kind=cnc-mill"], CNC, True),
        (["kind=cnc-mill"], {**CNC, "kind": "lathe"}, False),
        (["asset=~cnc-.*"], CNC, True),
        (["asset=~cnc-.*"], {**CNC, "asset": "press-1"}, False),
        (["asset=~cnc"], CNC, False),
        (["site!=plant-b", "kind=cnc-mill"], CNC, True),
        (["site!=plant-b", "kind=cnc-mill"], {**CNC, "site": "plant-b"}, False),
        (["kind!~lathe|press"], {**CNC, "kind": ""}, True),
    ],
    ids=[
        "no-matchers-watch-all",
        "kind-equal",
        "kind-other",
        "asset-regex",
        "asset-regex-other",
        "regex-is-anchored",
        "all-must-hold",
        "one-fails",
        "kind-unknown-reads-empty",
    ],
)
def test_rule_scope_selects_assets_by_kind_and_pattern(
    matchers: list[str], labels: dict[str, str], expected: bool
) -> None:
    """A rule watches the assets its matchers select."""
    rule = LimitRule(name="hot", condition="t > 90", matchers=matchers)
    assert rule.applies_to(labels) is expected


@pytest.mark.parametrize("matcher", ["rule=offline", "severity=critical"], ids=["rule", "severity"])
def test_rule_scope_cannot_match_alert_labels(matcher: str) -> None:
    """A scope selects assets; rule and severity exist only once an alert does."""
    with pytest.raises(ValidationError, match="a rule's scope can match only site, asset, kind"):
        AnomalyRule(name="anomaly", matchers=[matcher])


@pytest.mark.parametrize(
    ("matcher", "problem"),
    [("colour=red", "unknown label 'colour'"), ("asset=~(", "bad regular expression")],
    ids=["unknown-label", "bad-regex"],
)
def test_rule_scope_with_a_bad_matcher_is_rejected(matcher: str, problem: str) -> None:
    """A scope matcher that cannot work fails when the rule is made."""
    with pytest.raises((ValidationError, RulesError), match=problem):
        AnomalyRule(name="anomaly", matchers=[matcher])


# --- message templates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "options"),
    [(AnomalyRule, {}), (LimitRule, {"condition": "t > 1"}), (DeadmanRule, {})],
    ids=["anomaly", "limit", "deadman"],
)
def test_template_with_an_unknown_field_fails_at_load(
    rule: type[AnomalyRule | LimitRule | DeadmanRule], options: dict[str, str]
) -> None:
    """A typo in a field name fails when the rules load, not at the first alert."""
    with pytest.raises(ValidationError, match=r"unknown field \{assett\}"):
        rule.model_validate({"name": "r", "message": "{assett} is hot", **options})


def test_template_with_a_bad_format_spec_fails_at_load() -> None:
    """A format spec the field's values cannot take fails at load too."""
    with pytest.raises(ValidationError, match="bad format in template"):
        AnomalyRule(name="anomaly", message="score {value:.2q}")


def test_template_with_broken_braces_fails_at_load() -> None:
    """An unclosed placeholder is a bad template."""
    with pytest.raises(ValidationError, match="bad template"):
        AnomalyRule(name="anomaly", message="{asset is odd")


def test_template_can_name_every_documented_field() -> None:
    """Site, asset, kind, value, top_metric and duration (and the rest) may all appear."""
    template = MessageTemplate("{site}/{asset} ({kind}): {top_metric}={value:.1f} for {duration}")
    assert template.render(FIELDS) == "plant-a/cnc-1 (cnc-mill): vibration_rms=1.5 for 5m"


def test_template_renders_missing_values_as_a_dash() -> None:
    """A None value (unknown kind, no top metric, no score) shows as ``-``, format spec or not."""
    template = MessageTemplate("{asset} ({kind}): {top_metric} score {value:.2f}")
    values = {"asset": "cnc-1", "kind": None, "top_metric": None, "value": None}
    assert template.render(values) == "cnc-1 (-): - score -"


def test_rule_message_names_its_rule_and_severity() -> None:
    """``{rule}`` and ``{severity}`` come from the rule itself."""
    rule = LimitRule(
        name="hot", condition="t > 90", severity="critical", message="{rule} is {severity}"
    )
    assert rule.render({}) == "hot is critical"


def test_default_limit_message_reads_as_a_sentence() -> None:
    """The default limit message names the metric, its value, the limit and the asset."""
    rule = LimitRule(name="hot", condition="spindle_temp_c > 90")
    values = {
        "site": "plant-a",
        "asset": "cnc-1",
        "value": 93.5,
        "metric": "spindle_temp_c",
        "op": ">",
        "threshold": 90.0,
        "duration": "30s",
    }
    assert rule.render(values) == "spindle_temp_c is 93.5 (> 90) for 30s on cnc-1 at plant-a"


def test_default_anomaly_message_survives_an_unscored_alert() -> None:
    """The default anomaly message renders with no score and no top metric."""
    rule = AnomalyRule(name="anomaly")
    values = {"site": "plant-a", "asset": "cnc-1", "value": None, "top_metric": None}
    assert rule.render({**values, "duration": "3s"}) == (
        "cnc-1 at plant-a behaves abnormally for 3s: - stands out (score -)"
    )
