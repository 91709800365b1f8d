"""Unit tests of label matchers (`alerts.matchers`) and the routing tree (`alerts.route`)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from alerts.errors import RulesError
from alerts.matchers import Matcher, match_all, parse_all
from alerts.route import Route, RouteSpec, default_route

CRITICAL_A = {
    "site": "plant-a",
    "asset": "cnc-1",
    "kind": "cnc-mill",
    "rule": "anomaly_severe",
    "severity": "critical",
}
WARNING_C = {
    "site": "plant-c",
    "asset": "press-4",
    "kind": "press",
    "rule": "anomaly",
    "severity": "warning",
}


def _tree(text: str) -> Route:
    """The routing tree written as YAML, as in a routes file's ``route:``."""
    return Route.build(RouteSpec.model_validate(yaml.safe_load(text)))


def _receivers(root: Route, labels: dict[str, str]) -> list[tuple[str, ...]]:
    return [route.receivers for route in root.match(labels)]


# --- matchers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "op", "value"),
    [
        ("site=plant-a", "site", "=", "plant-a"),
        ("site!=plant-a", "site", "!=", "plant-a"),
        ("asset=~cnc-.*", "asset", "=~", "cnc-.*"),
        ("asset!~cnc-.*", "asset", "!~", "cnc-.*"),
        ('site="plant a"', "site", "=", "plant a"),
        (r'rule="say \"hi\""', "rule", "=", 'say "hi"'),
        ('asset=~"cnc-(1|2)"', "asset", "=~", "cnc-(1|2)"),
        ("  kind  =  cnc-mill  ", "kind", "=", "cnc-mill"),
        ("kind=", "kind", "=", ""),
        ('kind=""', "kind", "=", ""),
    ],
    ids=[
        "equal",
        "not-equal",
        "regex",
        "not-regex",
        "quoted-with-space",
        "quoted-with-escaped-quote",
        "quoted-regex",
        "spaces-around",
        "empty-bare",
        "empty-quoted",
    ],
)
def test_matcher_is_read_as_label_op_value(text: str, label: str, op: str, value: str) -> None:
    """Alertmanager's four operators, with bare or double-quoted values."""
    m = Matcher.parse(text)
    assert (m.label, m.op, m.value) == (label, op, value)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("site=plant-a", CRITICAL_A, True),
        ("site=plant-a", WARNING_C, False),
        ("site!=plant-a", WARNING_C, True),
        ("site!=plant-a", CRITICAL_A, False),
        ("asset=~cnc-.*", CRITICAL_A, True),
        ("asset=~cnc", CRITICAL_A, False),
        ("asset=~.*-1", CRITICAL_A, True),
        ("asset!~cnc-.*", WARNING_C, True),
        ("asset!~cnc-.*", CRITICAL_A, False),
        ("kind=", {"site": "plant-a"}, True),
        ("kind=~.+", {"site": "plant-a"}, False),
        ("site=Plant-A", CRITICAL_A, False),
    ],
    ids=[
        "equal-holds",
        "equal-fails",
        "not-equal-holds",
        "not-equal-fails",
        "regex-holds",
        "regex-is-anchored-at-end",
        "regex-is-anchored-at-start",
        "not-regex-holds",
        "not-regex-fails",
        "missing-label-reads-empty",
        "missing-label-fails-nonempty-regex",
        "case-sensitive",
    ],
)
def test_matcher_matches_labels(text: str, labels: dict[str, str], expected: bool) -> None:
    """A matcher holds or not for an alert's labels; regexes match the whole value."""
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("colour=red", "unknown label 'colour'"),
        ("alertname=x", "unknown label 'alertname'"),
        ("site", "expected label=value"),
        ("=plant-a", "expected label=value"),
        ("Site=plant-a", "expected label=value"),
        ("site~plant-a", "expected label=value"),
        ("asset=~(", "bad regular expression"),
        ('asset!~"[a-"', "bad regular expression"),
    ],
    ids=[
        "unknown-label",
        "alertmanager-label",
        "no-op",
        "no-label",
        "label-case",
        "bad-op",
        "bad-regex",
        "bad-negative-regex",
    ],
)
def test_bad_matcher_is_rejected_naming_the_problem(text: str, problem: str) -> None:
    """A matcher that cannot work fails with what is wrong with it."""
    with pytest.raises(RulesError, match=problem):
        Matcher.parse(text)


@pytest.mark.parametrize(
    "text",
    ["site=plant-a", 'site="plant a"', r'rule="say \"hi\""', "asset!~cnc-(1|2)"],
    ids=["bare", "space", "escaped-quote", "regex"],
)
def test_matcher_prints_in_a_form_that_parses_back(text: str) -> None:
    """``str(matcher)`` reads back to the same matcher."""
    m = Matcher.parse(text)
    assert Matcher.parse(str(m)) == m


def test_all_matchers_must_hold() -> None:
    """A list of matchers holds when every one does; an empty list always holds."""
    matchers = parse_all(["site=plant-a", "severity=critical"])
    assert (match_all(matchers, CRITICAL_A), match_all(matchers, WARNING_C)) == (True, False)
    assert match_all((), WARNING_C)


# --- route matching -------------------------------------------------------------------------

TREE = """
receivers: [log]
routes:
  - matchers: [severity=critical]
    receivers: [pager]
    continue: true
  - matchers: ['site=~plant-(a|b)']
    receivers: [north]
  - matchers: [kind=cnc-mill]
    receivers: [cnc-team]
"""


def test_alert_no_child_matches_takes_the_default_route() -> None:
    """The root is the default route: an alert no child takes goes to its receivers."""
    assert _receivers(_tree(TREE), WARNING_C) == [("log",)]


def test_first_matching_child_wins_without_continue() -> None:
    """Without ``continue``, the search stops at the first matching child."""
    labels = {**CRITICAL_A, "severity": "warning"}
    assert _receivers(_tree(TREE), labels) == [("north",)]


def test_continue_lets_later_siblings_match() -> None:
    """A matching child with ``continue: true`` passes the alert on to its later siblings."""
    assert _receivers(_tree(TREE), CRITICAL_A) == [("pager",), ("north",)]


def test_continue_alone_does_not_fall_back_to_the_default() -> None:
    """When only a continuing child matches, that child is the whole match."""
    labels = {**WARNING_C, "severity": "critical"}
    assert _receivers(_tree(TREE), labels) == [("pager",)]


def test_nested_routes_descend_to_the_deepest_match() -> None:
    """An alert descends into the matching child's children."""
    root = _tree(
        """
        receivers: [log]
        routes:
          - matchers: [site=plant-a]
            receivers: [plant-a-ops]
            routes:
              - matchers: [kind=cnc-mill]
                receivers: [plant-a-cnc]
        """
    )
    assert _receivers(root, CRITICAL_A) == [("plant-a-cnc",)]


def test_nested_route_with_no_matching_child_is_the_match() -> None:
    """A route whose children all miss takes the alert itself."""
    root = _tree(
        """
        receivers: [log]
        routes:
          - matchers: [site=plant-a]
            receivers: [plant-a-ops]
            routes:
              - matchers: [kind=press]
                receivers: [plant-a-press]
        """
    )
    assert _receivers(root, CRITICAL_A) == [("plant-a-ops",)]


def test_children_inherit_receivers_grouping_and_timings() -> None:
    """A child that sets nothing takes its parent's receivers, group_by and intervals."""
    root = _tree(
        """
        receivers: [ops]
        group_by: [site]
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 2h
        routes:
          - matchers: [site=plant-a]
            routes:
              - matchers: [kind=cnc-mill]
        """
    )
    (leaf,) = root.match(CRITICAL_A)
    assert (leaf.path, leaf.receivers, leaf.group_by) == ("root.0.0", ("ops",), ("site",))
    assert (leaf.group_wait, leaf.group_interval, leaf.repeat_interval) == (30.0, 300.0, 7200.0)


def test_child_settings_override_the_inherited_ones() -> None:
    """What a child sets replaces its parent's, for it and its own children."""
    root = _tree(
        """
        receivers: [ops]
        group_by: [site]
        repeat_interval: 2h
        routes:
          - matchers: [severity=critical]
            receivers: [pager]
            group_by: ['...']
            repeat_interval: 15m
            routes:
              - matchers: [kind=cnc-mill]
                group_wait: 10s
        """
    )
    (leaf,) = root.match(CRITICAL_A)
    assert (leaf.receivers, leaf.group_by) == (("pager",), ("...",))
    assert (leaf.group_wait, leaf.repeat_interval) == (10.0, 900.0)


def test_root_without_settings_takes_the_defaults() -> None:
    """A bare root sends to mqtt and log, one alert per group, repeating every 4 h."""
    root = _tree("routes: []")
    assert (root.receivers, root.group_by) == (("mqtt", "log"), ("...",))
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (0.0, 10.0, 14400.0)


def test_default_route_tells_mqtt_and_log_everything() -> None:
    """With no configuration, every alert reaches the mqtt and log receivers."""
    root = Route.build(default_route())
    assert _receivers(root, CRITICAL_A) == [("mqtt", "log")]
    assert _receivers(root, WARNING_C) == [("mqtt", "log")]


def test_walk_lists_every_route() -> None:
    """``walk`` visits the root and every descendant, in order."""
    assert [r.path for r in _tree(TREE).walk()] == ["root", "root.0", "root.1", "root.2"]


# --- group labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group_by", "labels", "expected"),
    [
        ("[site]", CRITICAL_A, {"site": "plant-a"}),
        ("[site, kind]", CRITICAL_A, {"site": "plant-a", "kind": "cnc-mill"}),
        ("[kind]", {"site": "plant-a"}, {"kind": ""}),
        ("['...']", CRITICAL_A, None),
        ("[]", CRITICAL_A, {}),
    ],
    ids=[
        "site",
        "site-and-kind",
        "missing-label-empty",
        "every-label-one-per-alert",
        "no-label-one-group-for-the-route",
    ],
)
def test_group_labels_are_the_group_by_labels_of_the_alert(
    group_by: str, labels: dict[str, str], expected: dict[str, str]
) -> None:
    """An alert's group on a route is named by its values of the route's group_by labels."""
    root = _tree(f"group_by: {group_by}")
    assert root.group_labels(labels) == expected


# --- route specs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("group_by: [alertname]", "group_by label 'alertname' is unknown"),
        ("recievers: [log]", "recievers"),
        ("group_wait: soon", "invalid duration 'soon'"),
        ("repeat_interval: -5", "cannot be negative"),
        ("routes: [{matchers: [severity=critical], continue: maybe}]", "continue"),
    ],
    ids=["unknown-group-label", "unknown-key", "bad-duration", "negative-duration", "bad-bool"],
)
def test_bad_route_spec_is_rejected(text: str, problem: str) -> None:
    """A routes tree that cannot work fails validation, naming the key."""
    with pytest.raises(ValidationError, match=problem):
        RouteSpec.model_validate(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("matcher", "problem"),
    [("colour=red", "unknown label 'colour'"), ("asset=~(", "bad regular expression")],
    ids=["unknown-label", "bad-regex"],
)
def test_route_with_a_bad_matcher_is_rejected(matcher: str, problem: str) -> None:
    """A route matcher that cannot work fails when the tree is read."""
    with pytest.raises((ValidationError, RulesError), match=problem):
        RouteSpec.model_validate({"routes": [{"matchers": [matcher]}]})


def test_route_durations_are_read_as_seconds() -> None:
    """Intervals are written as durations and kept in seconds."""
    spec = RouteSpec.model_validate(
        yaml.safe_load("group_wait: 30s\ngroup_interval: 5m\nrepeat_interval: 1h30m")
    )
    assert (spec.group_wait, spec.group_interval, spec.repeat_interval) == (30.0, 300.0, 5400.0)
