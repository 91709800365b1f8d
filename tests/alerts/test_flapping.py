"""Flap damping (`alerts.flapping`): an alert that keeps firing and resolving becomes one.

The pure tracker first, then the engine (`plantkit.Plant`, one CNC reporting once a second
of event time): a score hovering at the threshold, under rules that fire on 3 flagged readings
in a row (`plantkit.quick_rules`) and under the default rules, which wait for 2 minutes of
flags without a break; then a rule whose only defence is flap damping: it fires on 3 flagged
readings and resolves on 10 normal ones, with no minimum firing duration and no score
hysteresis, so a fault that comes and goes every 30 s fires and resolves every 30 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from plantkit import CNC_A, SECOND, T0, Plant, quick_rules

from alerts.flapping import CHATTER_WINDOW_NS, Flapping, FlapTracker, judge

MINUTE = 60 * SECOND
KEY = ("anomaly", "plant-a", "cnc-1")

# Fires on 3 flagged readings, resolves on 10 normal ones: nothing but flap damping.
CHURNING = """
rules:
  - {name: anomaly, type: anomaly, for_readings: 3, resolve_after: 10, resolve_below: 1}
"""
# Changes go out within a second; no repeat within these tests.
QUIET_ROUTE = "receivers: [mqtt]\ngroup_interval: 1s\nrepeat_interval: 24h"


def _churn(p: Plant, cycles: int) -> None:
    """A fault that comes and goes: 5 flagged readings, then 25 normal ones, per cycle."""
    for _ in range(cycles):
        p.run(5, faulty=[CNC_A], wall_every=0.01)
        p.run(25, wall_every=0.01)


def _states(p: Plant) -> list[tuple[str, int, bool]]:
    """Each alert record as (state, event second, flapping)."""
    return [(x.fields["state"], (x.ts - T0) // SECOND, x.fields["flapping"]) for x in p.points]


def _sent(p: Plant) -> list[tuple[str, bool]]:
    """Each alert notified, as (state, flapping)."""
    return [(a["state"], a["flapping"]) for n in p.outbox() for a in n.alerts]


@pytest.fixture
def churning(plant: Callable[..., Plant]) -> Callable[..., Plant]:
    """Return a factory of one-CNC plants under the churning rule."""

    def make(rules: str = CHURNING, name: str = "alerts.db") -> Plant:
        return plant(rules=rules, route=QUIET_ROUTE, assets=(CNC_A,), name=name)

    return make


# --- the tracker ----------------------------------------------------------------------------


def test_the_fourth_firing_within_thirty_minutes_is_flapping() -> None:
    """Default figures: more than 3 firings in 30 minutes; the fourth is the first flapping."""
    tracker = FlapTracker()
    verdicts = [tracker.fired(KEY, t * 9 * MINUTE, Flapping()).flapping for t in range(5)]
    assert verdicts == [False, False, False, True, True]


def test_firings_further_apart_than_the_window_allows_never_flap() -> None:
    """One firing every 11 minutes is at most 3 in any 30: never flapping."""
    tracker = FlapTracker()
    assert not any(tracker.fired(KEY, t * 11 * MINUTE, Flapping()).flapping for t in range(20))


def test_the_tracker_keeps_only_the_history_a_verdict_can_use() -> None:
    """Firings older than the window are dropped as new ones come."""
    tracker = FlapTracker()
    for t in (0, 10, 20, 45):
        tracker.fired(KEY, t * MINUTE, Flapping())
    assert tracker.history[KEY] == [20 * MINUTE, 45 * MINUTE]


def test_a_third_firing_within_a_minute_is_chattering_once() -> None:
    """ISA-18.2 chattering: reported on the third firing within a minute, not the fourth."""
    history = [0, 10 * SECOND, 20 * SECOND, 30 * SECOND]
    assert [judge(history[: n + 1], history[n], None).chattering for n in range(4)] == [
        False,
        False,
        True,
        False,
    ]


def test_without_flap_damping_only_chattering_is_judged() -> None:
    """A rule without flap damping never flaps, however often it fires."""
    history = [t * SECOND for t in range(10)]
    assert judge(history, history[-1], None).flapping is False


def test_forget_drops_histories_too_old_to_matter() -> None:
    """On restart, histories with no firing within the horizon go (their rows too)."""
    tracker = FlapTracker({KEY: [0], ("hot", "plant-a", "cnc-1"): [50 * MINUTE]})
    assert tracker.forget(60 * MINUTE, 30 * MINUTE) == [KEY]
    assert list(tracker.history) == [("hot", "plant-a", "cnc-1")]


def test_the_horizon_is_at_least_the_chattering_minute() -> None:
    """A tracker with no flap damping still keeps a minute, for chattering."""
    tracker = FlapTracker()
    tracker.fired(KEY, 0, None)
    tracker.fired(KEY, CHATTER_WINDOW_NS - 1, None)
    assert len(tracker.history[KEY]) == 2


# --- in the engine --------------------------------------------------------------------------


def _hover(p: Plant, seconds: int) -> None:
    """Scores at 0.45-0.53, flagged from 0.5 (the threshold): 3 readings in 8 flagged."""
    rng = random.Random(11)
    for _ in range(seconds):
        score = 0.45 + 0.08 * rng.random()
        flagged = [CNC_A] if score >= 0.5 else []
        p.run(1, faulty=flagged, score=score, scores={CNC_A: score}, wall_every=0.01)


def test_a_score_hovering_at_the_threshold_yields_one_notification(
    plant: Callable[..., Plant],
) -> None:
    """Firing on 3 flagged readings: an hour of scores at the threshold is one alert, told once."""
    p = plant(rules=quick_rules(), route=QUIET_ROUTE, assets=(CNC_A,))
    _hover(p, 3600)
    assert [state for state, _, _ in _states(p)] == ["firing"]
    assert _sent(p) == [("firing", False)]


def test_a_score_hovering_at_the_threshold_raises_nothing_by_default(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: an hour of scores at the threshold never flags 2 minutes in a row."""
    p = plant(route=QUIET_ROUTE, assets=(CNC_A,))
    _hover(p, 3600)
    assert (p.points, _sent(p), p.engine.open_alerts()) == ([], [], [])


def test_a_fault_then_an_hour_at_the_threshold_yields_one_notification_by_default(
    plant: Callable[..., Plant],
) -> None:
    """Default rules: 2 minutes flagged fire the warning; an hour at the threshold after is it."""
    p = plant(route=QUIET_ROUTE, assets=(CNC_A,))
    p.run(121, faulty=[CNC_A], wall_every=0.01)  # fires at 121 s
    _hover(p, 3600)
    assert _states(p) == [("firing", 121, False)]
    assert _sent(p) == [("firing", False)]


def test_a_flapping_alert_notifies_once_however_long_it_flaps(
    churning: Callable[..., Plant],
) -> None:
    """Three ordinary episodes, then two hours of churn held as one flapping alert, told once."""
    p = churning()
    _churn(p, 240)
    assert _sent(p) == [("firing", False), ("resolved", False)] * 3 + [("firing", True)]


def test_only_the_firing_that_makes_it_flap_is_marked_flapping(
    churning: Callable[..., Plant],
) -> None:
    """The first three episodes are ordinary; the fourth, at 1m33s, is the flapping one."""
    p = churning()
    _churn(p, 10)
    assert _states(p) == [
        ("firing", 3, False),
        ("resolved", 15, False),
        ("firing", 33, False),
        ("resolved", 45, False),
        ("firing", 63, False),
        ("resolved", 75, False),
        ("firing", 93, True),
    ]


def test_a_flapping_alert_resolves_fifteen_quiet_minutes_after_the_churn(
    churning: Callable[..., Plant],
) -> None:
    """Held until its condition has been quiet for 15 minutes, then one resolution."""
    p = churning()
    _churn(p, 10)  # the last flagged reading at 275 s
    p.run(900, wall_every=0.01)
    assert _states(p)[-1] == ("resolved", 275 + 900, True)
    assert _sent(p)[-2:] == [("firing", True), ("resolved", True)]


def test_a_flapping_alert_says_so_in_its_message(churning: Callable[..., Plant]) -> None:
    """The message tells the reader why the alert stays: it flaps, and what ends it."""
    p = churning()
    _churn(p, 4)
    assert (
        p.points[-1]
        .fields["message"]
        .endswith("(flapping: it fired more than 3 times in 30m; one alert until quiet for 15m)")
    )


def test_health_lists_a_flapping_alert_as_flapping(churning: Callable[..., Plant]) -> None:
    """The health map's entry of a flapping alert carries ``"flapping": true``."""
    p = churning()
    _churn(p, 4)
    (entry,) = p.health(CNC_A)[-1]["alerts"]
    assert entry["flapping"] is True


def test_without_flap_damping_every_episode_notifies(churning: Callable[..., Plant]) -> None:
    """``flapping: false``: the same churn fires and resolves every time."""
    p = churning(rules=CHURNING.replace("resolve_below: 1}", "resolve_below: 1, flapping: false}"))
    _churn(p, 8)
    assert _sent(p) == [("firing", False), ("resolved", False)] * 8


@pytest.mark.parametrize("stop", ["restart", "crash"], ids=["restart", "sigkill"])
def test_the_flap_history_survives_a_stop(churning: Callable[..., Plant], stop: str) -> None:
    """Three firings, a stop (clean or killed), and the next firing is still the fourth."""
    p = churning()
    _churn(p, 3)
    getattr(p, stop)()
    _churn(p, 1)
    assert _sent(p)[-1] == ("firing", True)


@pytest.mark.parametrize("stop", ["restart", "crash"], ids=["restart", "sigkill"])
def test_a_held_flapping_alert_stays_held_across_a_stop(
    churning: Callable[..., Plant], stop: str
) -> None:
    """A flapping alert is still one alert after a stop, and still resolves once quiet."""
    p = churning()
    _churn(p, 5)
    held = p.open_alert("anomaly", CNC_A).id
    getattr(p, stop)()
    _churn(p, 5)
    assert p.open_alert("anomaly", CNC_A).id == held
    p.run(900, wall_every=0.01)
    assert _sent(p)[-2:] == [("firing", True), ("resolved", True)]
    assert p.engine.open_alerts() == []


def _alerts_of(p: Plant) -> list[dict[str, Any]]:
    return [a for n in p.outbox() for a in n.alerts]


def test_the_flapping_field_is_in_every_alert_message(churning: Callable[..., Plant]) -> None:
    """Receivers get ``flapping`` in the alert JSON, false or true."""
    p = churning()
    _churn(p, 4)
    assert [a["flapping"] for a in _alerts_of(p)] == [False] * 6 + [True]
