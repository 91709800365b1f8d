"""Unit tests of the dispatcher (`alerts.dispatch`): grouping, muting, repeats, the log."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from alerts.base import Alert, Notification, Severity, State
from alerts.dispatch import Dispatcher, MuteStage
from alerts.lifecycle import alert_id
from alerts.metrics import AlertMetrics
from alerts.route import Route, RouteSpec
from alerts.silences import Silence, Silences

# 2026-01-01T00:00:00Z in ns: a fixed past.
T0 = 1_767_225_600_000_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
WALL0 = 1_767_225_600.0

TWO_RECEIVERS = """
receivers: [pager, log]
group_wait: 0s
group_interval: 10s
repeat_interval: 1m
"""


def _route(text: str) -> Route:
    return Route.build(RouteSpec.model_validate(yaml.safe_load(text)))


def _firing(
    asset: str = "cnc-1", site: str = "plant-a", rule: str = "anomaly", at: int = T0
) -> Alert:
    return Alert(
        alert_id(rule, site, asset, at),
        rule,
        Severity.WARNING,
        site,
        asset,
        "cnc-mill",
        State.FIRING,
        at,
        0.9,
        f"{asset} at {site} behaves abnormally",
        "vibration_rms",
        extra={"type": "anomaly"},
    )


def _resolve(alert: Alert, at: int) -> Alert:
    alert.state = State.RESOLVED
    alert.resolved_at = at
    return alert


def _told(notifications: list[Notification]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each notification as (receiver, [(asset, state), ...])."""
    return [(n.receiver, [(a["asset"], a["state"]) for a in n.alerts]) for n in notifications]


def _flush_every(
    dispatcher: Dispatcher, start: int, end: int, step: int, stages: list[Any] | None = None
) -> list[Notification]:
    """Flush at every `step` from `start` to `end` (inclusive), as the engine's ticks would."""
    out: list[Notification] = []
    for now in range(start, end + 1, step):
        out.extend(dispatcher.flush(now, stages or []))
    return out


def test_firing_alert_notifies_each_receiver_once() -> None:
    """A firing alert yields one notification per receiver of its route, carrying it."""
    dispatcher = Dispatcher(_route(TWO_RECEIVERS))
    alert = _firing()
    dispatcher.insert(alert, T0)
    sent = dispatcher.flush(T0, [])
    assert _told(sent) == [("pager", [("cnc-1", "firing")]), ("log", [("cnc-1", "firing")])]
    assert sent[0].alerts[0] == alert.to_json()


def test_notifications_have_distinct_delivery_ids() -> None:
    """Each notification carries its own id, by which a far end can deduplicate retries."""
    dispatcher = Dispatcher(_route(TWO_RECEIVERS))
    dispatcher.insert(_firing(), T0)
    ids = [n.id for n in dispatcher.flush(T0, [])]
    assert len(set(ids)) == 2 and all(ids)


def test_nothing_new_sends_nothing() -> None:
    """Flushing again before the repeat interval tells nobody anything."""
    dispatcher = Dispatcher(_route(TWO_RECEIVERS))
    dispatcher.insert(_firing(), T0)
    dispatcher.flush(T0, [])
    assert _flush_every(dispatcher, T0 + 10 * SECOND, T0 + 50 * SECOND, 10 * SECOND) == []


def test_group_wait_delays_the_first_notification() -> None:
    """A new group waits group_wait before its first notification."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_wait: 30s"))
    dispatcher.insert(_firing(), T0)
    assert dispatcher.due == T0 + 30 * SECOND
    assert dispatcher.flush(T0 + 29 * SECOND, []) == []
    assert _told(dispatcher.flush(T0 + 30 * SECOND, [])) == [("log", [("cnc-1", "firing")])]


def test_alerts_firing_together_at_one_site_share_one_notification() -> None:
    """With group_by [site], alerts at one site within group_wait go out as one notification."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_by: [site]\ngroup_wait: 30s"))
    dispatcher.insert(_firing("cnc-1", "plant-a"), T0)
    dispatcher.insert(_firing("cnc-2", "plant-a"), T0 + 10 * SECOND)
    dispatcher.insert(_firing("cnc-3", "plant-b"), T0 + 20 * SECOND)
    sent = dispatcher.flush(T0 + 30 * SECOND, [])
    assert [(n.group, sorted(a["asset"] for a in n.alerts)) for n in sent] == [
        ({"site": "plant-a"}, ["cnc-1", "cnc-2"]),
    ]
    later = dispatcher.flush(T0 + 50 * SECOND, [])
    assert [(n.group, [a["asset"] for a in n.alerts]) for n in later] == [
        ({"site": "plant-b"}, ["cnc-3"])
    ]


def test_every_label_grouping_sends_each_alert_on_its_own() -> None:
    """With group_by ['...'], alerts firing together still go out one per notification."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_by: ['...']"))
    dispatcher.insert(_firing("cnc-1"), T0)
    dispatcher.insert(_firing("cnc-2"), T0)
    sent = dispatcher.flush(T0, [])
    assert sorted(a["asset"] for n in sent for a in n.alerts) == ["cnc-1", "cnc-2"]
    assert len(sent) == 2 and all(n.group == {} for n in sent)


def test_new_alert_joining_a_group_notifies_after_group_interval() -> None:
    """A later alert of a notified group waits for the group's next flush, then goes out."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_by: [site]\ngroup_interval: 1m"))
    dispatcher.insert(_firing("cnc-1"), T0)
    dispatcher.flush(T0, [])
    dispatcher.insert(_firing("cnc-2", at=T0 + 5 * SECOND), T0 + 5 * SECOND)
    assert dispatcher.flush(T0 + 59 * SECOND, []) == []
    (sent,) = dispatcher.flush(T0 + MINUTE, [])
    assert sorted(a["asset"] for a in sent.alerts) == ["cnc-1", "cnc-2"]


def test_firing_alert_repeats_every_repeat_interval() -> None:
    """While it fires and nobody acknowledged it, an alert is repeated every repeat_interval."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_interval: 10s\nrepeat_interval: 1m"))
    dispatcher.insert(_firing(), T0)
    sent = _flush_every(dispatcher, T0, T0 + 150 * SECOND, 10 * SECOND)
    assert _told(sent) == [("log", [("cnc-1", "firing")])] * 3


def test_repeat_interval_counts_from_the_last_notification() -> None:
    """Repeats go out at 0, 1 and 2 minutes, not more often."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_interval: 10s\nrepeat_interval: 1m"))
    dispatcher.insert(_firing(), T0)
    times = [now for now in range(T0, T0 + 150 * SECOND, 10 * SECOND) if dispatcher.flush(now, [])]
    assert times == [T0, T0 + MINUTE, T0 + 2 * MINUTE]


def test_acknowledged_alert_is_not_repeated() -> None:
    """An acknowledged alert keeps firing without repeats."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_interval: 10s\nrepeat_interval: 1m"))
    alert = _firing()
    dispatcher.insert(alert, T0)
    dispatcher.flush(T0, [])
    alert.acked_by = "ben"
    assert _flush_every(dispatcher, T0 + 10 * SECOND, T0 + 10 * MINUTE, 10 * SECOND) == []


def test_acknowledged_alert_does_not_stop_the_repeats_of_its_group() -> None:
    """In a group, only the acknowledged alert leaves the repeats."""
    route = "receivers: [log]\ngroup_by: [site]\ngroup_interval: 10s\nrepeat_interval: 1m"
    dispatcher = Dispatcher(_route(route))
    acked, other = _firing("cnc-1"), _firing("cnc-2")
    dispatcher.insert(acked, T0)
    dispatcher.insert(other, T0)
    dispatcher.flush(T0, [])
    acked.acked_by = "ben"
    repeats = _flush_every(dispatcher, T0 + 10 * SECOND, T0 + MINUTE, 10 * SECOND)
    assert _told(repeats) == [("log", [("cnc-2", "firing")])]


def test_resolved_alert_is_sent_once() -> None:
    """A resolution goes out once to each receiver, then the group is gone."""
    dispatcher = Dispatcher(_route(TWO_RECEIVERS))
    alert = _firing()
    dispatcher.insert(alert, T0)
    dispatcher.flush(T0, [])
    dispatcher.insert(_resolve(alert, T0 + 5 * SECOND), T0 + 5 * SECOND)
    sent = _flush_every(dispatcher, T0 + 10 * SECOND, T0 + 5 * MINUTE, 10 * SECOND)
    assert _told(sent) == [("pager", [("cnc-1", "resolved")]), ("log", [("cnc-1", "resolved")])]
    assert dispatcher.groups == {}


def test_resolved_goes_only_to_receivers_told_it_fired() -> None:
    """A receiver whose group_wait had not passed when the alert resolved hears nothing."""
    dispatcher = Dispatcher(
        _route(
            """
            receivers: [log]
            routes:
              - receivers: [pager]
                group_wait: 0s
                continue: true
              - receivers: [email]
                group_wait: 5m
            """
        )
    )
    alert = _firing()
    dispatcher.insert(alert, T0)
    first = dispatcher.flush(T0, [])
    dispatcher.insert(_resolve(alert, T0 + MINUTE), T0 + MINUTE)
    rest = _flush_every(dispatcher, T0 + 10 * SECOND, T0 + 10 * MINUTE, 10 * SECOND)
    assert _told(first) == [("pager", [("cnc-1", "firing")])]
    assert _told(rest) == [("pager", [("cnc-1", "resolved")])]


def test_alert_that_resolves_before_anyone_heard_of_it_sends_nothing() -> None:
    """Firing and resolving within group_wait tells nobody anything."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_wait: 1m"))
    alert = _firing()
    dispatcher.insert(alert, T0)
    dispatcher.insert(_resolve(alert, T0 + 10 * SECOND), T0 + 10 * SECOND)
    assert _flush_every(dispatcher, T0, T0 + 5 * MINUTE, 10 * SECOND) == []


def test_muted_alert_is_not_sent_and_is_sent_once_unmuted() -> None:
    """A silenced alert is held back; when the silence ends it goes out, once."""
    wall = [WALL0]
    silences = Silences(clock=lambda: wall[0])
    silences.add(Silence.create(["asset=cnc-1"], WALL0, WALL0 + 60, "ana", "bearing swap"))
    stages = [MuteStage(silences, "silenced")]
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_interval: 10s\nrepeat_interval: 1h"))
    dispatcher.insert(_firing(), T0)
    muted = _flush_every(dispatcher, T0, T0 + 50 * SECOND, 10 * SECOND, stages)
    wall[0] += 61
    unmuted = _flush_every(dispatcher, T0 + MINUTE, T0 + 5 * MINUTE, 10 * SECOND, stages)
    assert muted == []
    assert _told(unmuted) == [("log", [("cnc-1", "firing")])]


def test_mute_stage_lets_other_alerts_through_and_counts_the_muted() -> None:
    """Only the alerts a silence covers are held back; the muted ones are counted."""
    metrics = AlertMetrics()
    silences = Silences(clock=lambda: WALL0)
    silences.add(Silence.create(["asset=cnc-1"], WALL0, WALL0 + 60, "ana", "bearing swap"))
    stage = MuteStage(silences, "silenced", metrics)
    kept = stage([_firing("cnc-1"), _firing("cnc-2")], 0)
    assert [a.asset for a in kept] == ["cnc-2"]
    assert metrics.registry.get_sample_value(
        "meshwatch_notifications_muted_total", {"cause": "silenced"}
    ) == pytest.approx(1.0)


def _saved(dispatcher: Dispatcher) -> list[dict]:
    """The groups as the state store keeps them (through JSON)."""
    return orjson.loads(orjson.dumps([g for g in dispatcher.drain().values() if g is not None]))


def test_state_round_trip_keeps_the_log() -> None:
    """After drain and restore, a notified alert is not sent again, and still resolves."""
    route = _route(TWO_RECEIVERS)
    before = Dispatcher(route)
    before.insert(_firing(), T0)
    before.flush(T0, [])
    after = Dispatcher(route)
    after.restore(_saved(before), {}, T0 + SECOND)
    assert _flush_every(after, T0 + 10 * SECOND, T0 + 50 * SECOND, 10 * SECOND) == []
    (alert,) = [a for g in after.groups.values() for a in g.alerts.values()]
    after.insert(_resolve(alert, T0 + 55 * SECOND), T0 + 55 * SECOND)
    sent = after.flush(T0 + MINUTE, [])
    assert _told(sent) == [("pager", [("cnc-1", "resolved")]), ("log", [("cnc-1", "resolved")])]


def test_state_round_trip_keeps_the_repeat_schedule() -> None:
    """A restored log repeats at the interval counted from the last notification before it."""
    route = _route(TWO_RECEIVERS)
    before = Dispatcher(route)
    before.insert(_firing(), T0)
    before.flush(T0, [])
    after = Dispatcher(route)
    after.restore(_saved(before), {}, T0 + 30 * SECOND)
    times = [
        now
        for now in range(T0 + 30 * SECOND, T0 + 90 * SECOND, 10 * SECOND)
        if after.flush(now, [])
    ]
    assert times == [T0 + MINUTE]


def test_restore_adopts_the_live_alert_object() -> None:
    """An alert the engine still holds is the same object in the restored group."""
    route = _route(TWO_RECEIVERS)
    before = Dispatcher(route)
    before.insert(_firing(), T0)
    before.flush(T0, [])
    live = _firing()
    after = Dispatcher(route)
    after.restore(_saved(before), {live.key: live}, T0)
    assert [a for g in after.groups.values() for a in g.alerts.values()] == [live]
    assert next(iter(after.groups.values())).alerts[live.id] is live


def test_resolution_is_not_lost_when_the_rule_fires_again_before_the_flush() -> None:
    """An episode that resolves and is followed by a new one still sends its resolution."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_interval: 10s\nrepeat_interval: 1h"))
    first = _firing(at=T0)
    dispatcher.insert(first, T0)
    dispatcher.flush(T0, [])
    dispatcher.insert(_resolve(first, T0 + 2 * SECOND), T0 + 2 * SECOND)
    second = _firing(at=T0 + 4 * SECOND)
    dispatcher.insert(second, T0 + 4 * SECOND)
    sent = dispatcher.flush(T0 + 10 * SECOND, [])
    assert sorted((a["id"], a["state"]) for n in sent for a in n.alerts) == sorted(
        [(first.id, "resolved"), (second.id, "firing")]
    )


def test_empty_group_by_puts_all_alerts_of_the_route_in_one_group() -> None:
    """``group_by: []`` groups by nothing: alerts firing together go out as one notification."""
    dispatcher = Dispatcher(_route("receivers: [log]\ngroup_by: []\ngroup_wait: 30s"))
    dispatcher.insert(_firing("cnc-1", "plant-a"), T0)
    dispatcher.insert(_firing("cnc-3", "plant-b"), T0 + 10 * SECOND)
    sent = dispatcher.flush(T0 + 30 * SECOND, [])
    assert [sorted(a["asset"] for a in n.alerts) for n in sent] == [["cnc-1", "cnc-3"]]
