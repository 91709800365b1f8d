"""Tests of `alerts.settings.load`: the rules and routes files, good and bad."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alerts.errors import RulesError
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule
from alerts.settings import AlertsSettings, load

GOOD_RULES = """\
rules:
  - name: hot_spindle
    type: limit
    condition: spindle_temp_c > 90
    for: 30s
    severity: critical
    matchers: [kind=cnc-mill]
    message: "{asset} at {site}: spindle at {value:.1f} C for {duration}"
  - name: anomaly
    type: anomaly
    for_readings: 5
    resolve_after: 20
  - name: offline
    type: deadman
    for: 10m
"""

GOOD_ROUTES = """\
receivers:
  - name: maintenance-desk
    webhook:
      url: http://127.0.0.1:9/hooks
route:
  receivers: [mqtt, log]
  group_by: [site]
  routes:
    - matchers: [severity=critical]
      receivers: [maintenance-desk]
      continue: true
      repeat_interval: 1h
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _rules_error(path: Path, kind: str = "rules") -> str:
    settings = AlertsSettings(**{f"{kind}_file": path})
    with pytest.raises(RulesError) as info:
        load(settings)
    return str(info.value)


# --- good files -----------------------------------------------------------------------------


def test_no_configuration_gives_the_defaults() -> None:
    """With nothing configured: the default rules, everything to mqtt and log."""
    alerting = load(AlertsSettings())
    assert [r.name for r in alerting.rules] == ["anomaly", "offline"]
    assert (alerting.route.receivers, alerting.route.children, alerting.receivers) == (
        ("mqtt", "log"),
        (),
        (),
    )


def test_rules_file_gives_the_rules(tmp_path: Path) -> None:
    """Each rule of the rules file is read, with its kind, options and template."""
    alerting = load(AlertsSettings(rules_file=_write(tmp_path, "rules.yaml", GOOD_RULES)))
    hot, anomaly, offline = alerting.rules
    assert isinstance(hot, LimitRule)
    assert (hot.metric, hot.op, hot.value, hot.for_, hot.severity) == (
        "spindle_temp_c",
        ">",
        90.0,
        30.0,
        "critical",
    )
    assert hot.applies_to({"kind": "cnc-mill"}) and not hot.applies_to({"kind": "lathe"})
    assert isinstance(anomaly, AnomalyRule)
    assert (anomaly.for_readings, anomaly.resolve_after) == (5, 20)
    assert isinstance(offline, DeadmanRule)
    assert offline.for_ == 600.0


def test_rules_file_templates_render(tmp_path: Path) -> None:
    """A rule's message template from the file renders its fields."""
    alerting = load(AlertsSettings(rules_file=_write(tmp_path, "rules.yaml", GOOD_RULES)))
    message = alerting.rules[0].render(
        {"site": "plant-a", "asset": "cnc-1", "value": 93.26, "duration": "30s"}
    )
    assert message == "cnc-1 at plant-a: spindle at 93.3 C for 30s"


def test_routes_file_gives_the_tree_and_receivers(tmp_path: Path) -> None:
    """The routes file's tree is built with inheritance, and its receivers are defined."""
    alerting = load(AlertsSettings(routes_file=_write(tmp_path, "routes.yaml", GOOD_ROUTES)))
    (receiver,) = alerting.receivers
    assert (receiver.name, receiver.kind) == ("maintenance-desk", "webhook")
    critical = {"site": "plant-a", "severity": "critical"}
    assert [
        (r.receivers, r.group_by, r.repeat_interval) for r in alerting.route.match(critical)
    ] == [(("maintenance-desk",), ("site",), 3600.0)]


def test_rules_and_routes_files_load_together(tmp_path: Path) -> None:
    """Both files at once give both halves of the configuration."""
    alerting = load(
        AlertsSettings(
            rules_file=_write(tmp_path, "rules.yaml", GOOD_RULES),
            routes_file=_write(tmp_path, "routes.yaml", GOOD_ROUTES),
        )
    )
    assert ([r.name for r in alerting.rules], [r.name for r in alerting.receivers]) == (
        ["hot_spindle", "anomaly", "offline"],
        ["maintenance-desk"],
    )


def test_routes_may_name_the_built_in_receivers_without_defining_them(tmp_path: Path) -> None:
    """``mqtt`` and ``log`` exist without a definition."""
    path = _write(tmp_path, "routes.yaml", "route:\n  receivers: [log]\n")
    assert load(AlertsSettings(routes_file=path)).route.receivers == ("log",)


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "line", "key", "problem"),
    [
        (
            "rules",
            """\
            rules:
              - name: hot
                type: limit
                condition: spindle_temp_c > 90
                for: 5 minutes
            """,
            5,
            "rules[0].for",
            "invalid duration '5 minutes'",
        ),
        (
            "rules",
            """\
            rules:
              - name: anomaly
                type: anomaly
              - name: hot
                type: limit
                condition: spindle_temp_c > 90
                colour: red
            """,
            7,
            "rules[1].colour",
            "unknown key",
        ),
        (
            "rules",
            """\
            rules:
              - name: hot
                type: limit
                condition: spindle_temp_c > 90
                severity: urgent
            """,
            5,
            "rules[0].severity",
            "'info', 'warning' or 'critical'",
        ),
        (
            "rules",
            """\
            rules:
              - name: anomaly
                type: anomaly
                message: "{assett} is odd"
            """,
            4,
            "rules[0].message",
            "unknown field {assett}",
        ),
        (
            "rules",
            """\
            version: 2
            rules: []
            """,
            1,
            "version",
            "unknown key",
        ),
        (
            "routes",
            """\
            route:
              receivers: [log]
              group_wait: soon
            """,
            3,
            "route.group_wait",
            "invalid duration 'soon'",
        ),
        (
            "routes",
            """\
            route:
              routes:
                - matchers: [severity=critical]
                  recievers: [log]
            """,
            4,
            "route.routes[0].recievers",
            "unknown key",
        ),
        (
            "routes",
            """\
            receivers:
              - name: desk
                webhook:
                  url: http://127.0.0.1:9/hooks
                log: {}
            route:
              receivers: [desk]
            """,
            2,
            "receivers[0]",
            "receiver 'desk' needs exactly one of webhook, email, mqtt, log (got webhook, log)",
        ),
    ],
    ids=[
        "bad-duration",
        "unknown-key",
        "bad-severity",
        "bad-template",
        "unknown-top-level-key",
        "route-bad-duration",
        "route-unknown-key",
        "receiver-with-two-kinds",
    ],
)
def test_bad_file_fails_naming_the_file_line_and_key(
    tmp_path: Path, kind: str, text: str, line: int, key: str, problem: str
) -> None:
    """The error is one line: the file, the line and key of the problem, and the problem."""
    path = _write(tmp_path, f"{kind}.yaml", text)
    message = _rules_error(path, kind)
    assert message.startswith(f"{path}: line {line} ({key}): ")
    assert problem in message
    assert "\n" not in message


def test_route_naming_an_undefined_receiver_fails_naming_the_file_and_route(
    tmp_path: Path,
) -> None:
    """A route naming a receiver nobody defined fails, naming the file, the route and the name."""
    path = _write(
        tmp_path,
        "routes.yaml",
        """\
        route:
          receivers: [log]
          routes:
            - matchers: [severity=critical]
              receivers: [pager]
        """,
    )
    message = _rules_error(path, "routes")
    assert message.startswith(f"{path}: ")
    assert "route root.0 names receiver 'pager', which is not defined" in message


def test_not_yaml_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    """A file that is not YAML fails with the line where parsing stopped."""
    path = _write(tmp_path, "rules.yaml", "rules:\n  - name: [hot\n    type: limit\n")
    assert _rules_error(path).startswith(f"{path}: line ")


def test_missing_file_fails_naming_it(tmp_path: Path) -> None:
    """A rules file that cannot be read fails naming it."""
    path = tmp_path / "nowhere.yaml"
    assert _rules_error(path) == f"{path}: cannot read: No such file or directory"


def test_duplicate_rule_names_fail_naming_the_file_line_and_key(tmp_path: Path) -> None:
    """Two rules of one name fail at the second one's name."""
    path = _write(
        tmp_path,
        "rules.yaml",
        """\
        rules:
          - name: hot
            type: limit
            condition: spindle_temp_c > 90
          - name: hot
            type: deadman
        """,
    )
    message = _rules_error(path)
    assert message.startswith(f"{path}: line 5 (rules[1].name): ")
    assert "'hot'" in message


@pytest.mark.parametrize(
    ("kind", "text", "line", "key"),
    [
        (
            "rules",
            """\
            rules:
              - name: hot
                type: limit
                condition: spindle_temp_c > 90
                matchers: [colour=red]
            """,
            5,
            "rules[0].matchers",
        ),
        (
            "routes",
            """\
            route:
              routes:
                - matchers: ['asset=~(']
            """,
            3,
            "route.routes[0].matchers",
        ),
    ],
    ids=["rule-scope-unknown-label", "route-bad-regex"],
)
def test_bad_matcher_in_a_file_fails_naming_the_file_line_and_key(
    tmp_path: Path, kind: str, text: str, line: int, key: str
) -> None:
    """A matcher that cannot work fails like any other bad value: file, line, key."""
    path = _write(tmp_path, f"{kind}.yaml", text)
    assert _rules_error(path, kind).startswith(f"{path}: line {line} ({key}): ")
