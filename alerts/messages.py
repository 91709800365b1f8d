"""What an alert says: the alert an episode begins with, its message, its stored record.

A rule's template (`alerts.templates`) is filled with the asset, the alert's value and top
metric and how long the condition has held (for a limit rule also its metric, operator and
threshold); an escalated alert's message is its level's (`alerts.escalation`); a flapping
alert's message says that it flaps and how it is damped. Each transition of an episode, and
each change of its level, is stored as an ``alert`` record (`record`).
"""

from __future__ import annotations

from typing import Literal

from alerts.base import Alert, State
from alerts.flapping import note
from alerts.fleet import AnyRule, TrackedAsset
from alerts.lifecycle import alert_id
from alerts.rules import DeadmanRule, LimitRule
from common.durations import format_duration
from ingest.base import Point

_NS = 1_000_000_000
#: A change of an alert's level (`alerts.escalation`), as its ``alert`` record says it.
LevelChange = Literal["escalated", "deescalated"]


def new_alert(
    rule: AnyRule,
    site: str,
    asset: str,
    kind: str | None,
    state: State,
    ts: int,
    value: float,
    top_metric: str | None,
) -> Alert:
    """The alert of an episode of `rule` on an asset that begins at `ts`."""
    return Alert(
        alert_id(rule.name, site, asset, ts),
        rule.name,
        rule.severity,
        site,
        asset,
        kind,
        state,
        ts,
        value,
        "",
        top_metric,
        extra={"type": rule.type},
    )


def render(rule: AnyRule, a: TrackedAsset, alert: Alert, held_ns: int) -> str:
    """The alert's message at its severity now, its condition held `held_ns`; flapping noted."""
    message = rule.render(values(rule, a, alert, held_ns), alert.severity)
    if alert.flapping and not isinstance(rule, DeadmanRule) and rule.flapping is not None:
        message += note(rule.flapping)
    return message


def values(rule: AnyRule, a: TrackedAsset, alert: Alert, held_ns: int) -> dict[str, object]:
    """The fields a rule's message template is filled with (`alerts.templates.FIELDS`)."""
    filled: dict[str, object] = {
        "site": a.site,
        "asset": a.asset,
        "kind": a.kind,
        "value": alert.value,
        "top_metric": alert.top_metric,
        "duration": format_duration(held_ns / _NS),
    }
    if isinstance(rule, LimitRule):
        filled.update(metric=rule.metric, op=rule.op, threshold=rule.value)
    return filled


def record(alert: Alert, rule: str, change: State | LevelChange, ts: int) -> Point:
    """The ``alert`` record of `alert` at event time `ts`: it fired, resolved or changed level.

    The ``state`` field says which (the new state, or `LevelChange`); the ``severity`` tag is
    the alert's now.
    """
    return Point(
        "alert",
        {"site": alert.site, "asset": alert.asset, "rule": rule, "severity": alert.severity},
        {
            "state": str(change),
            "value": alert.value,
            "message": alert.message,
            "id": alert.id,
            "flapping": alert.flapping,
            "kind": alert.kind or "",
        },
        ts,
    )
