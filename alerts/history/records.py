"""What the store keeps of people's actions and of notifications, beside the ``alert`` records.

The ``alert`` measurement holds an episode's transitions (`alerts.messages.record`); alert
history also needs who acknowledged, shelved, judged or silenced it, and which receivers were
told. Two more measurements carry that (docs/design.md §5):

``alert_action``
    One point per action on an alert (``ack``, ``shelve``, ``unshelve``, ``feedback``), tagged
    with the alert's site, asset and rule, and per silence added or expired (``silence``,
    ``expire``), whose tags are empty (a silence selects alerts by matchers, not by one asset).
    Fields: ``id`` (the alert's, or the silence's), ``by``, ``comment``, and by action
    ``verdict``, ``until`` (a shelf's end), ``matchers``, ``starts_at``, ``ends_at`` (a silence's
    window, ns). Time: the fleet clock's event time when the action was applied.
``notification``
    One point per alert per notification queued for a receiver, tagged site, asset, rule,
    ``receiver`` and ``state`` (firing or resolved: a new episode and the old one's resolution
    can share a notification). Fields: ``id`` (the alert's), ``notification`` (the delivery
    id), ``alerts`` (how many alerts the notification carried). Time: event time of the flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import orjson

from alerts.base import Alert, Notification
from ingest.base import FieldValue, Point

ACTION = "alert_action"
NOTIFICATION = "notification"
#: Actions on one alert, and on silences.
AlertAction = Literal["ack", "shelve", "unshelve", "feedback"]
SilenceAction = Literal["silence", "expire"]
_NS = 1_000_000_000
#: The largest integer a field holds (InfluxDB and SQLite store 64-bit integers).
_INT64_MAX = 2**63 - 1


def alert_action(
    action: AlertAction,
    alert: Alert,
    ts: int,
    by: str,
    comment: str = "",
    **extra: FieldValue,
) -> Point:
    """The ``alert_action`` point of `action` on `alert` at event time `ts`.

    Examples
    --------
    >>> from alerts.base import Severity, State
    >>> a = Alert("9c0e", "hot", Severity.CRITICAL, "lyon", "cnc-1", None, State.FIRING, 5, 9.0, "")
    >>> p = alert_action("ack", a, 7, "ana", "on it")
    >>> p.measurement, dict(p.tags), dict(p.fields), p.ts
    ('alert_action', {'site': 'lyon', 'asset': 'cnc-1', 'rule': 'hot', 'action': 'ack'}, \
{'id': '9c0e', 'by': 'ana', 'comment': 'on it'}, 7)
    """
    tags = {"site": alert.site, "asset": alert.asset, "rule": alert.rule, "action": action}
    fields: dict[str, FieldValue] = {"id": alert.id, "by": by, "comment": comment, **extra}
    return Point(ACTION, tags, fields, ts)


def silence_action(action: SilenceAction, silence: Mapping[str, Any], ts: int) -> Point:
    """The ``alert_action`` point of a silence added or expired (`silence`: its saved state).

    `silence` is `alerts.silences.Silence.to_state`: ``id``, ``matchers`` (text),
    ``starts_at``, ``ends_at`` (wall-clock seconds), ``created_by``, ``comment`` and, for a
    repeating one, ``every`` (its window, kept as JSON).

    Examples
    --------
    >>> s = {"id": "3f2a", "matchers": ["site=lyon"], "starts_at": 1.0, "ends_at": 2.5,
    ...      "created_by": "ana", "comment": "bearing swap"}
    >>> dict(silence_action("silence", s, 9).fields)["ends_at"]
    2500000000
    """
    tags = {"site": "", "asset": "", "rule": "", "action": action}
    fields: dict[str, FieldValue] = {
        "id": str(silence["id"]),
        "by": str(silence.get("created_by", "")),
        "comment": str(silence.get("comment", "")),
        "matchers": orjson.dumps([str(m) for m in silence.get("matchers", ())]).decode(),
        "starts_at": _ns(silence["starts_at"]),
        "ends_at": _ns(silence["ends_at"]),
    }
    if silence.get("every"):
        # A repeating silence's weekly window (`alerts.timeintervals.TimeIntervalSpec`).
        fields["every"] = orjson.dumps(silence["every"]).decode()
    return Point(ACTION, tags, fields, ts)


def _ns(seconds: object) -> int:
    """Wall-clock seconds as ns, held inside the store's 64-bit integers (year 2262)."""
    return min(int(float(str(seconds)) * _NS), _INT64_MAX)


def notification_points(notifications: Iterable[Notification], ts: int) -> list[Point]:
    """One ``notification`` point per alert of each notification, at event time `ts`.

    Examples
    --------
    >>> n = Notification("mqtt", {}, [{"id": "9c0e", "site": "lyon", "asset": "cnc-1",
    ...                                 "rule": "hot", "state": "firing"}], "d1")
    >>> [(dict(p.tags), dict(p.fields)) for p in notification_points([n], 7)]
    [({'site': 'lyon', 'asset': 'cnc-1', 'rule': 'hot', 'receiver': 'mqtt', 'state': 'firing'}, \
{'id': '9c0e', 'notification': 'd1', 'alerts': 1})]
    """
    points = []
    for n in notifications:
        for alert in n.alerts:
            tags = {
                "site": str(alert.get("site", "")),
                "asset": str(alert.get("asset", "")),
                "rule": str(alert.get("rule", "")),
                "receiver": n.receiver,
                "state": str(alert.get("state", "")),
            }
            fields: dict[str, FieldValue] = {
                "id": str(alert.get("id", "")),
                "notification": n.id,
                "alerts": len(n.alerts),
            }
            points.append(Point(NOTIFICATION, tags, fields, ts))
    return points
