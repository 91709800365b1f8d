"""Tests of the alert engine (`alerts.engine`) over a small fleet, on a real alerts.db.

Three sites with a CNC mill each report once a second of event time (`plantkit.Plant`); the
engine's wall clock is a value the test moves. Notifications are read back from the outbox
table the engine commits them to, and the health map and reroute advice from a publisher
that records.

Tests of the engine's own behaviour use `plantkit.quick_rules` (an anomaly warning on the third
flagged reading in a row), so an alert fires within seconds; the tests named after the
default rules run those, whose anomaly rules wait for 2 minutes of flags without a break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantkit import (
    CNC_A,
    CNC_B,
    CNC_C,
    FAST_ROUTE,
    FLEET,
    SECOND,
    T0,
    Plant,
    prompt_rules,
    quick_rules,
)

from alerts.base import SITE_WIDE, Observation, State
from alerts.silences import Silence


def _at(seconds: int) -> int:
    return T0 + seconds * SECOND


# --- a fault, its repeats and its recovery --------------------------------------------------


def test_fault_notifies_each_receiver_exactly_once(plant: Callable[..., Plant]) -> None:
    """A fault on one asset: one firing notification to mqtt and one to log, no more."""
    p = plant(rules=quick_rules())
    p.run(10)
    p.run(30, faulty=[CNC_A])
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
    ]


def test_healthy_fleet_causes_no_notifications(plant: Callable[..., Plant]) -> None:
    """Assets that behave raise no alert and notify nobody."""
    p = plant()
    points = p.run(200)
    assert (points, p.told(), p.engine.open_alerts()) == ([], [], [])


def test_firing_alert_repeats_at_the_repeat_interval(plant: Callable[..., Plant]) -> None:
    """An alert nobody acknowledges is repeated every repeat_interval of event time."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])  # fires on the third reading
    p.run(95, faulty=[CNC_A])
    notes = p.outbox()
    assert [n.receiver for n in notes] == ["mqtt", "log"] * 4
    assert {a["id"] for n in notes for a in n.alerts} == {p.open_alert("anomaly", CNC_A).id}


def test_recovery_sends_one_resolved_notification(plant: Callable[..., Plant]) -> None:
    """After the asset recovers, each receiver hears once that the alert resolved."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(5, faulty=[CNC_A])
    p.run(60)
    notes = p.outbox()
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
        ("mqtt", "anomaly", "cnc-1", "resolved"),
        ("log", "anomaly", "cnc-1", "resolved"),
    ]
    assert len({a["id"] for n in notes for a in n.alerts}) == 1


def test_resolution_waits_for_the_normal_readings_of_hysteresis(
    plant: Callable[..., Plant],
) -> None:
    """The default anomaly rule resolves once 10 normal readings and 5 minutes firing both hold."""
    p = plant(route=FAST_ROUTE)
    p.run(125, faulty=[CNC_A])  # flagged from 1 s: fires at 121 s, 2 minutes on
    assert p.run(295) == []
    (resolved,) = p.run(1)
    assert (resolved.fields["state"], resolved.ts) == ("resolved", _at(421))


# --- the default rules' on-delay ------------------------------------------------------------


def test_a_flag_held_two_minutes_without_a_break_raises_the_default_warning(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: flagged for 2 minutes of event time in a row, the asset gets a warning."""
    p = plant()
    p.run(10)
    assert p.run(120, faulty=[CNC_A]) == []  # flagged from 11 s to 130 s: 1m59s
    points = p.run(1, faulty=[CNC_A])
    assert [(x.tags["rule"], x.tags["severity"], x.fields["state"], x.ts) for x in points] == [
        ("anomaly", "warning", "firing", _at(131)),
    ]
    assert "behaves abnormally for 2m:" in points[0].fields["message"]


def test_a_flag_shorter_than_two_minutes_raises_nothing_by_default(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: a strong flag that lasts 100 s (a state change settling) raises no alert."""
    p = plant()
    p.run(10)
    p.run(100, faulty=[CNC_A], score=0.9)
    p.run(400)
    assert (p.points, p.told(), p.engine.open_alerts()) == ([], [], [])


def test_one_unflagged_reading_restarts_the_default_two_minutes(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: 100 s flagged, one normal reading, 2 minutes flagged: it fires only then."""
    p = plant()
    p.run(100, faulty=[CNC_A], score=0.9)
    p.run(1)  # the break, at 101 s
    assert p.run(120, faulty=[CNC_A], score=0.9) == []  # 102 s to 221 s
    points = p.run(1, faulty=[CNC_A], score=0.9)
    assert [(x.tags["rule"], x.ts) for x in points] == [("anomaly", _at(222))]


def test_strong_fault_held_two_minutes_raises_one_critical_alert(
    plant: Callable[..., Plant],
) -> None:
    """Scores of 0.8 and more held for 2 minutes fire the default rule at once at critical."""
    p = plant()
    points = p.run(121, faulty=[CNC_A], score=0.9)
    assert [(x.tags["rule"], x.tags["severity"], x.fields["state"], x.ts) for x in points] == [
        ("anomaly", "critical", "firing", _at(121)),
    ]
    assert "is failing" in points[0].fields["message"]


def test_a_weaker_score_for_two_minutes_raises_the_warning_alone(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: flagged at 0.6 for 2 minutes is a warning; critical needs 0.8."""
    p = plant()
    points = p.run(200, faulty=[CNC_A], score=0.6)
    assert [(x.tags["rule"], x.ts) for x in points] == [("anomaly", _at(121))]


def test_limit_rule_fires_after_its_duration_in_event_time(plant: Callable[..., Plant]) -> None:
    """``spindle_temp_c > 90 for 30s`` fires on the reading 30 s after the first hot one."""
    p = plant(
        rules="rules: [{name: hot, type: limit, condition: spindle_temp_c > 90, for: 30s, "
        "severity: critical}]",
        route=FAST_ROUTE,
    )
    hot = {CNC_A: {"spindle_temp_c": 95.0}}
    points = p.run(10, metrics=hot, every=5, wall_every=0.01)
    assert [(x.tags["rule"], x.fields["state"], x.ts) for x in points] == [
        ("hot", "firing", _at(35)),
    ]
    assert points[0].fields["message"] == "spindle_temp_c is 95 (> 90) for 30s on cnc-1 at plant-a"


# --- flapping -------------------------------------------------------------------------------


def test_flapping_from_healthy_raises_nothing(plant: Callable[..., Plant]) -> None:
    """A score hovering at the threshold (flagged every other reading) never fires."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    for _ in range(50):
        p.run(1, faulty=[CNC_A])
        p.run(1)
    assert (p.points, p.told()) == ([], [])


def test_flapping_while_firing_does_not_flood(plant: Callable[..., Plant]) -> None:
    """Once firing, alternating readings neither resolve nor re-fire the alert."""
    p = plant(
        rules=quick_rules(), route="receivers: [mqtt, log]\ngroup_interval: 1s\nrepeat_interval: 1h"
    )
    p.run(3, faulty=[CNC_A])
    for _ in range(50):
        p.run(1)
        p.run(1, faulty=[CNC_A])
    assert [x.fields["state"] for x in p.points] == ["firing"]
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
    ]


# --- silences and acknowledgements ----------------------------------------------------------


def _silence(p: Plant, seconds: float, *matchers: str) -> Silence:
    silence = Silence.create(
        list(matchers or ("site=plant-a", "asset=cnc-1")),
        p.wall.now,
        p.wall.now + seconds,
        "ana",
        "spindle bearing swap",
    )
    return p.desk.add_silence(silence)


def test_silenced_fault_notifies_nobody(plant: Callable[..., Plant]) -> None:
    """While a silence covers the asset, its alert fires and is recorded, but not sent."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(5)
    _silence(p, 600)
    points = p.run(60, faulty=[CNC_A])
    assert [x.fields["state"] for x in points] == ["firing"]
    assert p.told() == []


def test_silence_puts_the_asset_in_maintenance(plant: Callable[..., Plant]) -> None:
    """Adding a silence publishes the asset's health, retained, as ``maintenance``."""
    p = plant()
    p.run(5)
    _silence(p, 600)
    last = p.publisher.on("meshwatch/health/plant-a/cnc-1")[-1]
    assert (last.json()["status"], last.retain) == ("maintenance", True)
    assert "spindle bearing swap" in last.json()["reason"]
    assert [h["status"] for h in p.health(CNC_B)] == ["ok"]


def test_still_failing_asset_notifies_after_its_silence_expires(
    plant: Callable[..., Plant],
) -> None:
    """When the silence ends (wall clock), the next tick sends the alert still firing."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(5)
    _silence(p, 60)
    p.run(20, faulty=[CNC_A])
    assert p.told() == []
    p.wall.now += 41  # past the end of the silence
    p.engine.tick()
    p.engine.commit()
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
    ]
    assert p.health(CNC_A)[-1]["status"] == "warning"


def test_silence_that_selects_a_rule_does_not_mean_maintenance(
    plant: Callable[..., Plant],
) -> None:
    """A silence of one rule mutes it but leaves the asset's health to its alerts."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(5)
    _silence(p, 600, "site=plant-a", "rule=anomaly")
    p.run(5, faulty=[CNC_A])
    assert p.told() == []
    assert [h["status"] for h in p.health(CNC_A)] == ["ok", "warning"]


def test_acknowledgement_stops_the_repeats(plant: Callable[..., Plant]) -> None:
    """An acknowledged alert keeps firing without being repeated."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.desk.ack(p.open_alert("anomaly", CNC_A).id, "ben")
    p.run(120, faulty=[CNC_A])
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
    ]


def test_acknowledged_alert_still_sends_its_resolution(plant: Callable[..., Plant]) -> None:
    """Acknowledging stops the repeats, not the news that the asset recovered."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.desk.ack(p.open_alert("anomaly", CNC_A).id, "ben")
    p.run(20)
    assert [state for _, _, _, state in p.told()] == ["firing", "firing", "resolved", "resolved"]


# --- inhibition -----------------------------------------------------------------------------

TWO_AT_A = (CNC_A, ("plant-a", "cnc-5"), CNC_B, CNC_C)


def test_offline_site_inhibits_the_alerts_of_its_assets(plant: Callable[..., Plant]) -> None:
    """When every asset of a site stops, only the site-wide alert notifies."""
    p = plant(assets=TWO_AT_A)
    p.run(10)
    points = p.run(310, silent=TWO_AT_A[:2])
    assert sorted((x.tags["asset"], x.fields["state"]) for x in points) == [
        ("*", "firing"),
        ("cnc-1", "firing"),
        ("cnc-5", "firing"),
    ]
    assert p.told() == [
        ("mqtt", "offline", SITE_WIDE, "firing"),
        ("log", "offline", SITE_WIDE, "firing"),
    ]


def test_site_back_resolves_the_site_wide_alert(plant: Callable[..., Plant]) -> None:
    """When the site reports again, the site-wide alert resolves, and only it is told."""
    p = plant(assets=TWO_AT_A)
    p.run(10)
    p.run(310, silent=TWO_AT_A[:2])
    p.run(30)
    assert p.told()[2:] == [
        ("mqtt", "offline", SITE_WIDE, "resolved"),
        ("log", "offline", SITE_WIDE, "resolved"),
    ]
    assert p.engine.open_alerts() == []


INHIBITING_RULES = """
rules:
  - {name: warm, type: limit, condition: spindle_temp_c > 80, severity: warning}
  - {name: hot, type: limit, condition: spindle_temp_c > 90, severity: critical}
"""


def test_critical_alert_inhibits_the_warning_of_the_same_asset(
    plant: Callable[..., Plant],
) -> None:
    """Both rules fire, but only the critical one is told."""
    p = plant(rules=INHIBITING_RULES, route=FAST_ROUTE)
    points = p.run(5, metrics={CNC_A: {"spindle_temp_c": 95.0}})
    assert sorted(x.tags["rule"] for x in points) == ["hot", "warm"]
    assert p.told() == [("mqtt", "hot", "cnc-1", "firing"), ("log", "hot", "cnc-1", "firing")]


def test_critical_alert_leaves_other_assets_warnings_alone(plant: Callable[..., Plant]) -> None:
    """A critical alert on one asset does not mute another asset's warning."""
    p = plant(rules=INHIBITING_RULES, route=FAST_ROUTE)
    p.run(5, metrics={CNC_A: {"spindle_temp_c": 95.0}, CNC_B: {"spindle_temp_c": 85.0}})
    assert sorted(p.told()) == [
        ("log", "hot", "cnc-1", "firing"),
        ("log", "warm", "cnc-2", "firing"),
        ("mqtt", "hot", "cnc-1", "firing"),
        ("mqtt", "warm", "cnc-2", "firing"),
    ]


# --- deadman --------------------------------------------------------------------------------


def test_silent_asset_goes_offline_from_its_last_reading_plus_for(
    plant: Callable[..., Plant],
) -> None:
    """No reading for 5 minutes of fleet time: the alert starts at last reading + 5 min."""
    p = plant()
    p.run(10)
    points = p.run(320, silent=[CNC_A])
    (fired,) = [x for x in points if x.tags["asset"] == "cnc-1"]
    assert (fired.tags["rule"], fired.fields["state"], fired.ts) == ("offline", "firing", _at(310))
    assert p.open_alert("offline", CNC_A).started_at == _at(310)
    assert p.health(CNC_A)[-1]["status"] == "offline"


def test_asset_back_resolves_its_offline_alert(plant: Callable[..., Plant]) -> None:
    """The first reading after the silence resolves the alert and the asset is ok again."""
    p = plant()
    p.run(10)
    p.run(320, silent=[CNC_A])
    points = p.run(1)
    assert sorted((x.tags["asset"], x.fields["state"], x.ts) for x in points) == [
        ("*", "resolved", _at(331)),
        ("cnc-1", "resolved", _at(331)),
    ]
    assert p.health(CNC_A)[-1]["status"] == "ok"


def test_site_wide_alert_resolves_when_any_asset_of_the_site_reports(
    plant: Callable[..., Plant],
) -> None:
    """A site is offline while none of its assets reports: a new asset's reading ends that."""
    p = plant()
    p.run(10)
    p.run(310, silent=[CNC_A])
    p.assets = (*FLEET, ("plant-a", "cnc-9"))
    p.run(5, silent=[CNC_A])
    assert [(a.rule, a.asset) for a in p.engine.open_alerts()] == [("offline", "cnc-1")]


def test_whole_fleet_silent_goes_offline_by_the_wall_clock(plant: Callable[..., Plant]) -> None:
    """With no reading from anyone, time moves with the wall clock and deadman still fires."""
    p = plant()
    p.run(10)
    p.wall.now += 306
    points = p.engine.tick()
    p.engine.commit()
    assert sorted((x.tags["asset"], x.ts) for x in points) == [
        ("*", _at(310)),
        ("*", _at(310)),
        ("*", _at(310)),
        ("cnc-1", _at(310)),
        ("cnc-2", _at(310)),
        ("cnc-3", _at(310)),
    ]


def _outage_and_fault(p: Plant, wall_every: float) -> list[tuple[Any, ...]]:
    """A stream with an outage of cnc-1 and a fault on cnc-2, at a given wall pace."""
    p.run(10, wall_every=wall_every, tick=True)
    p.run(400, silent=[CNC_A], wall_every=wall_every, tick=True)
    p.run(15, faulty=[CNC_B], wall_every=wall_every, tick=True)
    p.run(30, wall_every=wall_every, tick=True)
    return [(dict(x.tags), dict(x.fields), x.ts) for x in p.points]


def test_replay_at_any_speed_raises_the_same_alerts(plant: Callable[..., Plant]) -> None:
    """The same readings at real pace and at 100x give the same alert points: ids and times."""
    original = _outage_and_fault(plant(rules=prompt_rules(), name="original.db"), wall_every=1.0)
    replay = _outage_and_fault(plant(rules=prompt_rules(), name="replay.db"), wall_every=0.01)
    assert sorted(
        (tags["asset"], tags["rule"], fields["state"]) for tags, fields, _ in original
    ) == [
        ("*", "offline", "firing"),
        ("*", "offline", "resolved"),
        ("cnc-1", "offline", "firing"),
        ("cnc-1", "offline", "resolved"),
        ("cnc-2", "anomaly", "firing"),
        ("cnc-2", "anomaly", "resolved"),
    ]
    assert replay == original


def test_replay_in_bigger_batches_raises_the_same_alerts(plant: Callable[..., Plant]) -> None:
    """A fast replay arrives in bigger batches: the alerts and notifications are the same."""
    original = plant(rules=quick_rules(), name="original.db")
    _outage_and_fault(original, wall_every=1.0)
    replay = plant(rules=quick_rules(), name="replay.db")
    batches = original.batches
    for start in range(0, len(batches), 50):
        replay.wall.now += 0.5
        replay.points.extend(
            replay.engine.observe([o for b in batches[start : start + 50] for o in b])
        )
        replay.engine.commit()
    assert [(x.tags, x.fields, x.ts) for x in replay.points] == [
        (x.tags, x.fields, x.ts) for x in original.points
    ]
    assert replay.told() == original.told()


# --- restart --------------------------------------------------------------------------------


def test_restart_with_a_firing_alert_neither_refires_nor_forgets_it(
    plant: Callable[..., Plant],
) -> None:
    """After a restart the alert is not told again, and its resolution still goes out."""
    p = plant(
        rules=prompt_rules(),
        route="receivers: [mqtt, log]\ngroup_interval: 1s\nrepeat_interval: 1h",
    )
    p.run(5, faulty=[CNC_A])
    fired = p.open_alert("anomaly", CNC_A).id
    p.restart()
    assert p.run(30, faulty=[CNC_A]) == []
    assert len(p.told()) == 2
    p.run(15)
    notes = p.outbox()
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-1", "firing"),
        ("log", "anomaly", "cnc-1", "firing"),
        ("mqtt", "anomaly", "cnc-1", "resolved"),
        ("log", "anomaly", "cnc-1", "resolved"),
    ]
    assert {a["id"] for n in notes for a in n.alerts} == {fired}


def test_restart_keeps_the_repeat_schedule(plant: Callable[..., Plant]) -> None:
    """Repeats after a restart keep the interval counted before it."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.run(10, faulty=[CNC_A])
    p.restart()
    p.run(19, faulty=[CNC_A])
    assert len(p.told()) == 2
    p.run(1, faulty=[CNC_A])  # 30 s after the first notification, at t=3
    assert len(p.told()) == 4


def test_restart_keeps_acknowledgements(plant: Callable[..., Plant]) -> None:
    """An acknowledged alert stays acknowledged (no repeats) after a restart."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.desk.ack(p.open_alert("anomaly", CNC_A).id, "ben")
    p.restart()
    p.run(100, faulty=[CNC_A])
    assert len(p.told()) == 2
    assert p.open_alert("anomaly", CNC_A).acked_by == "ben"


def test_restart_keeps_silences(plant: Callable[..., Plant]) -> None:
    """A silence added before a restart still holds notifications back after it."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(5)
    silence = _silence(p, 600)
    p.restart()
    p.run(30, faulty=[CNC_A])
    assert p.told() == []
    assert [s.id for s in p.engine.silences.all()] == [silence.id]


def test_restart_of_an_offline_asset_does_not_fire_again(plant: Callable[..., Plant]) -> None:
    """An asset offline before a restart stays offline with the same alert, and resolves."""
    p = plant()
    p.run(10)
    p.run(310, silent=[CNC_A])
    fired = p.open_alert("offline", CNC_A).id
    p.restart()
    assert p.run(50, silent=[CNC_A]) == []
    assert p.open_alert("offline", CNC_A).id == fired
    resolved = [x for x in p.run(1) if x.tags["asset"] == "cnc-1"]
    assert [(x.fields["state"], x.fields["id"]) for x in resolved] == [("resolved", fired)]


# --- reroute advice -------------------------------------------------------------------------

REROUTE_FLEET = (CNC_A, CNC_B, CNC_C, ("plant-c", "cnc-4"))
REROUTE_SCORES = {CNC_B: 0.3, CNC_C: 0.05}


def _failing_cnc_with_one_offline(p: Plant) -> None:
    """cnc-4 at plant-c goes offline, then cnc-1 at plant-a fails hard."""
    p.run(10, scores=REROUTE_SCORES)
    p.run(31, silent=[("plant-c", "cnc-4")], scores=REROUTE_SCORES, every=10)
    p.run(12, faulty=[CNC_A], score=0.9, silent=[("plant-c", "cnc-4")], scores=REROUTE_SCORES)


def test_failing_cnc_gets_advice_naming_healthy_cncs_at_other_sites(
    plant: Callable[..., Plant],
) -> None:
    """Advice lists the healthy CNCs of the other sites, best first, not failing or offline."""
    p = plant(rules=quick_rules(), assets=REROUTE_FLEET)
    _failing_cnc_with_one_offline(p)
    (advice,) = p.advice(CNC_A)
    assert advice.retain
    body = advice.json()
    assert (body["site"], body["asset"], body["kind"], body["status"]) == (
        "plant-a",
        "cnc-1",
        "cnc-mill",
        "critical",
    )
    assert [(c["site"], c["asset"], c["status"]) for c in body["candidates"]] == [
        ("plant-c", "cnc-3", "ok"),
        ("plant-b", "cnc-2", "ok"),
    ]


def test_offline_asset_gets_advice_too(plant: Callable[..., Plant]) -> None:
    """An asset that goes offline is advised on, with status offline."""
    p = plant(rules=quick_rules(), assets=REROUTE_FLEET)
    _failing_cnc_with_one_offline(p)
    first = p.advice(("plant-c", "cnc-4"))[0].json()
    assert first["status"] == "offline"
    assert [c["asset"] for c in first["candidates"]] == ["cnc-1", "cnc-2"]


def test_recovery_clears_the_advice(plant: Callable[..., Plant]) -> None:
    """When the failing asset recovers, its advice is cleared with an empty retained message."""
    p = plant(rules=prompt_rules(), assets=REROUTE_FLEET)
    _failing_cnc_with_one_offline(p)
    p.run(20, silent=[("plant-c", "cnc-4")], scores=REROUTE_SCORES)
    last = p.advice(CNC_A)[-1]
    assert (last.payload, last.retain) == (b"", True)


def test_less_loaded_candidate_comes_first_among_equally_healthy(
    plant: Callable[..., Plant],
) -> None:
    """Between candidates of the same health, the one reporting less load ranks first."""
    p = plant(rules=quick_rules())
    loads = {CNC_B: {"utilization": 0.9}, CNC_C: {"utilization": 0.2}}
    p.run(5, metrics=loads)
    p.run(10, faulty=[CNC_A], score=0.9, metrics=loads)
    (advice,) = p.advice(CNC_A)
    assert [c["asset"] for c in advice.json()["candidates"]] == ["cnc-3", "cnc-2"]


def test_candidates_are_ranked_by_their_current_health(plant: Callable[..., Plant]) -> None:
    """The candidate scoring best now comes first, whatever it scored when first seen."""
    p = plant(rules=quick_rules())
    p.run(5)
    p.run(20, scores={CNC_B: 0.45, CNC_C: 0.05})
    p.run(10, faulty=[CNC_A], score=0.9, scores={CNC_B: 0.45, CNC_C: 0.05})
    (advice,) = p.advice(CNC_A)
    assert [(c["asset"], c["score"]) for c in advice.json()["candidates"]] == [
        ("cnc-3", 0.05),
        ("cnc-2", 0.45),
    ]


# --- health map -----------------------------------------------------------------------------


def test_health_is_published_on_change_not_every_reading(plant: Callable[..., Plant]) -> None:
    """A hundred readings of a healthy asset publish its health once; a fault once more."""
    p = plant(rules=quick_rules())
    p.run(100)
    p.run(3, faulty=[CNC_A])
    p.run(50, faulty=[CNC_A])
    assert [h["status"] for h in p.health(CNC_A)] == ["ok", "warning"]
    assert [h["status"] for h in p.health(CNC_B)] == ["ok"]
    assert all(m.retain for m in p.publisher.messages)


def test_health_message_says_why(plant: Callable[..., Plant]) -> None:
    """A warning's health carries the alert's message, its time and its open alerts."""
    p = plant(rules=quick_rules())
    p.run(3, faulty=[CNC_A])
    health = p.health(CNC_A)[-1]
    alert = p.open_alert("anomaly", CNC_A)
    assert health == {
        "site": "plant-a",
        "asset": "cnc-1",
        "kind": "cnc-mill",
        "status": "warning",
        "score": 0.6,
        "since": "2026-01-01T00:00:03.000Z",
        "reason": alert.message,
        "alerts": [{"id": alert.id, "rule": "anomaly", "severity": "warning", "state": "firing"}],
        "instance": "meshwatch",
    }


# --- alert points ---------------------------------------------------------------------------


def test_alert_points_are_written_on_firing_and_resolved_only(
    plant: Callable[..., Plant],
) -> None:
    """Pending writes nothing; firing and resolved write one ``alert`` point each."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    pending = p.run(2, faulty=[CNC_A])
    p.run(3, faulty=[CNC_A])
    p.run(10)
    assert pending == []
    assert [(x.measurement, x.fields["state"], x.ts) for x in p.points] == [
        ("alert", "firing", _at(3)),
        ("alert", "resolved", _at(15)),
    ]


def test_alert_point_carries_the_schema_tags_and_fields(plant: Callable[..., Plant]) -> None:
    """Tags site, asset, rule, severity; fields state, value, message, id, flapping, kind."""
    p = plant(rules=quick_rules())
    (point,) = p.run(3, faulty=[CNC_A])
    alert = p.open_alert("anomaly", CNC_A)
    assert point.tags == {
        "site": "plant-a",
        "asset": "cnc-1",
        "rule": "anomaly",
        "severity": "warning",
    }
    assert point.fields == {
        "state": "firing",
        "value": 0.6,
        "message": alert.message,
        "id": alert.id,
        "flapping": False,
        "kind": alert.kind,
    }


# --- redelivery -----------------------------------------------------------------------------


def test_redelivered_readings_change_nothing(plant: Callable[..., Plant]) -> None:
    """Readings at or before an asset's last timestamp are ignored: no state, no output."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(10)
    p.run(2, faulty=[CNC_A])  # pending: one more flagged reading would fire
    before = (len(p.publisher.messages), p.told(), [a.to_state() for a in p.engine.open_alerts()])
    again = [obs for batch in p.batches[-4:] for obs in batch] * 2
    flagged = [p.reading(CNC_A, anomalous=True, score=0.9)]  # the same ts as the last reading
    assert p.engine.observe(again) == []
    assert p.engine.observe(flagged) == []
    p.engine.commit()
    after = (len(p.publisher.messages), p.told(), [a.to_state() for a in p.engine.open_alerts()])
    assert after == before
    assert p.open_alert("anomaly", CNC_A).state is State.PENDING


# --- review fixes ---------------------------------------------------------------------------


def test_an_asset_whose_clock_runs_behind_is_not_taken_for_offline(
    plant: Callable[..., Plant],
) -> None:
    """Readings that keep coming, stamped 400 s behind the fleet, are not a silence."""
    p = plant(rules="rules:\n  - {name: offline, type: deadman, for: 5m, site: false}")
    for step in range(1, 120):
        behind = Observation("plant-b", "cnc-2", "cnc-mill", _at(step) - 400 * SECOND, {"t": 1})
        on_time = [p.reading(key) for key in (CNC_A, CNC_C)]
        p.points.extend(p.engine.observe([*on_time, behind]))
        p.engine.commit()
    assert p.points == []


def test_a_repeat_says_how_long_the_alert_has_been_firing(plant: Callable[..., Plant]) -> None:
    """The repeated notification's message is rendered anew, not the one of the first."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(65, faulty=[CNC_A])
    messages = [a["message"] for n in p.outbox() if n.receiver == "mqtt" for a in n.alerts]
    assert len(messages) == 3  # at 3 s, then 30 s and 60 s later
    assert "for 2s" in messages[0]
    assert "for 32s" in messages[1]
    assert "for 1m2s" in messages[2]


def test_an_anomaly_rule_with_only_a_duration_waits_for_the_duration(
    plant: Callable[..., Plant],
) -> None:
    """`for: 20s` alone: flagged for 20 s of event time fires, however few readings that is."""
    p = plant(rules="rules:\n  - {name: slow, type: anomaly, for: 20s}", route=FAST_ROUTE)
    points = p.run(19, faulty=[CNC_A], every=2)  # a reading every 2 s: 10 readings in 20 s
    assert [(x.tags["rule"], x.ts) for x in points] == [("slow", _at(22))]
