"""Planned maintenance windows in the alert engine, judged in event time.

A route's time intervals and repeating silences (``silence add --every``). The plant's
event time starts on Thursday 2026-01-01 00:00 UTC and moves a second a reading; the window
here is Thursday 00:00-00:02, so its first two minutes are inside.
"""

from __future__ import annotations

from collections.abc import Callable

from plantkit import CNC_A, CNC_B, FAST_ROUTE, Plant, prompt_rules, quick_rules

from alerts.commands.handler import handle
from alerts.silences import Silence, Silences
from alerts.timeintervals import parse_every

WINDOWED_ROUTE = (
    FAST_ROUTE
    + """
time_intervals:
  - name: thursday-startup
    time_intervals:
      - weekdays: [thursday]
        times: [{start_time: "00:00", end_time: "00:02"}]
routes:
  - matchers: [site=plant-a]
    mute_time_intervals: [thursday-startup]
  - matchers: [site=~.+]
"""
)
FIRED_A = [("mqtt", "anomaly", "cnc-1", "firing"), ("log", "anomaly", "cnc-1", "firing")]
RESOLVED_A = [("mqtt", "anomaly", "cnc-1", "resolved"), ("log", "anomaly", "cnc-1", "resolved")]


def _windowed(plant: Callable[..., Plant], name: str = "alerts.db") -> Plant:
    return plant(rules=quick_rules(), route=WINDOWED_ROUTE, name=name)


# --- a route's mute interval -------------------------------------------------------------------


def test_a_fault_inside_the_window_is_recorded_but_not_told(plant: Callable[..., Plant]) -> None:
    """cnc-1 fails in its route's window: the alert fires and is recorded; nobody is told."""
    p = _windowed(plant)
    points = p.run(30, faulty=[CNC_A])
    assert [x.fields["state"] for x in points] == ["firing"]
    assert p.told() == []


def test_the_window_mutes_only_its_routes_assets(plant: Callable[..., Plant]) -> None:
    """cnc-2 at another site, on another route, is told at once."""
    p = _windowed(plant)
    p.run(30, faulty=[CNC_A, CNC_B])
    assert p.told() == [
        ("mqtt", "anomaly", "cnc-2", "firing"),
        ("log", "anomaly", "cnc-2", "firing"),
    ]


def test_an_alert_still_firing_when_the_window_ends_is_told(plant: Callable[..., Plant]) -> None:
    """At 00:02 event time the still-failing cnc-1 is told, once."""
    p = _windowed(plant)
    p.run(110, faulty=[CNC_A])
    assert p.told() == []
    p.run(15, faulty=[CNC_A])
    assert p.told() == FIRED_A


def test_the_window_puts_its_assets_in_maintenance_and_lets_them_out(
    plant: Callable[..., Plant],
) -> None:
    """Health: maintenance (naming the window) while it holds, the alerts' status after."""
    p = _windowed(plant)
    p.run(5, faulty=[CNC_A])
    inside = p.health(CNC_A)[-1]
    assert (inside["status"], inside["reason"]) == (
        "maintenance",
        "maintenance window thursday-startup",
    )
    assert p.health(CNC_B)[-1]["status"] == "ok"
    p.run(120, faulty=[CNC_A])
    assert p.health(CNC_A)[-1]["status"] == "warning"


def test_a_resolution_inside_the_window_of_an_alert_told_before_it_goes_out(
    plant: Callable[..., Plant],
) -> None:
    """Told on Wednesday night, resolved in the window: the resolution says time_interval."""
    route = WINDOWED_ROUTE.replace(
        'start_time: "00:00", end_time: "00:02"', 'start_time: "00:00", end_time: "00:30"'
    )
    p = plant(rules=prompt_rules(), route=route)
    p.t = -10  # Wednesday 23:59:50
    p.run(5, faulty=[CNC_A])
    assert p.told() == FIRED_A
    p.run(30)
    assert p.told() == FIRED_A + RESOLVED_A
    assert {a["muted"] for n in p.outbox()[2:] for a in n.alerts} == {"time_interval"}


def test_a_replay_is_muted_as_the_live_stream_was(plant: Callable[..., Plant]) -> None:
    """The same readings replayed later, in big batches, fall in the same window (event time)."""
    live = _windowed(plant, "live.db")
    live.run(125, faulty=[CNC_A])
    live.run(30)
    replay = _windowed(plant, "replay.db")
    replay.wall.now += 86_400 * 40  # a Saturday, weeks later: wall time is outside the window
    for start in range(0, len(live.batches), 50):
        replay.wall.now += 0.5
        replay.engine.observe([o for b in live.batches[start : start + 50] for o in b])
        replay.engine.commit()
    assert live.told() == FIRED_A * 2  # at the window's end, and a repeat 30 s later
    assert replay.told() == live.told()


# --- a repeating silence ------------------------------------------------------------------------


def _every(p: Plant, every: str, *matchers: str) -> Silence:
    silence = Silence.create(
        list(matchers) or ["site=plant-a"],
        p.wall.now,
        p.wall.now + 86_400 * 365,
        "ana",
        "weekly service",
        parse_every(every),
    )
    return p.desk.add_silence(silence)


def test_a_repeating_silence_mutes_only_inside_its_window(plant: Callable[..., Plant]) -> None:
    """``thu 00:00-00:02``: muted for the first two minutes of event time, then told."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    _every(p, "thu 00:00-00:02")
    p.run(110, faulty=[CNC_A])
    assert p.told() == []
    p.run(15, faulty=[CNC_A])
    assert p.told() == FIRED_A


def test_a_repeating_silence_outside_its_window_mutes_nothing(plant: Callable[..., Plant]) -> None:
    """A Monday window on a Thursday: the fault is told at once."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    _every(p, "mon 00:00-24:00")
    p.run(5, faulty=[CNC_A])
    assert p.told() == FIRED_A


def test_a_repeating_silence_marks_maintenance_saying_when_it_repeats(
    plant: Callable[..., Plant],
) -> None:
    """Inside its window the asset is in maintenance, the reason giving the schedule and why."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(2)
    _every(p, "thu 00:00-00:02")
    assert (
        p.health(CNC_A)[-1]["reason"] == "maintenance every thu 00:00-00:02 (ana: weekly service)"
    )
    p.run(125)
    assert p.health(CNC_A)[-1]["status"] == "ok"


def test_a_repeating_silence_survives_a_restart(plant: Callable[..., Plant]) -> None:
    """Saved with its schedule: after a restart it still mutes only inside its window."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    added = _every(p, "thu 00:00-00:02")
    p.crash()
    assert p.engine.silences.get(added.id) == added
    p.run(110, faulty=[CNC_A])
    assert p.told() == []
    p.run(15, faulty=[CNC_A])
    assert p.told() == FIRED_A


def test_the_silence_command_adds_a_repeating_silence_until_expired(
    plant: Callable[..., Plant],
) -> None:
    """``every`` without an end: it lasts until expired, and its listing gives the schedule."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    body = {
        "action": "add",
        "matchers": ["kind=cnc-mill"],
        "every": "thu 00:00-00:02 UTC",
        "created_by": "ana",
        "comment": "weekly service",
    }
    reply = handle(p.desk, "silence", _json(body))
    assert reply["ok"], reply
    assert (reply["silence"]["every"], reply["silence"]["ends_at"]) == (
        "thu 00:00-00:02",
        "2199-12-31T23:59:59.000Z",
    )
    listed = handle(p.desk, "silence", _json({"action": "list"}))["silences"]
    assert [s["every"] for s in listed] == ["thu 00:00-00:02"]


def test_the_silence_command_refuses_a_bad_every_and_adds_nothing(
    plant: Callable[..., Plant],
) -> None:
    """A weekday that is none: the reply names it; no silence is added."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    body = {
        "action": "add",
        "matchers": ["site=plant-a"],
        "every": "funday 06:00-08:00",
        "created_by": "ana",
        "comment": "service",
    }
    reply = handle(p.desk, "silence", _json(body))
    assert not reply["ok"]
    assert "'funday' is not a weekday" in reply["error"]
    assert p.engine.silences.all() == []


def test_silences_judge_a_repeating_window_at_the_event_time_given() -> None:
    """`Silences.mutes` at two event times of the same wall time: inside, then outside."""
    silences = Silences(clock=lambda: 0.0)
    silences.add(Silence.create(["site=a"], -1.0, 1.0, "ana", "pm", parse_every("thu 00:00-00:02")))
    thursday = 1_767_225_600_000_000_000
    assert silences.mutes({"site": "a"}, thursday)
    assert not silences.mutes({"site": "a"}, thursday + 120 * 10**9)


def _json(body: dict[str, object]) -> bytes:
    import orjson

    return orjson.dumps(body)
