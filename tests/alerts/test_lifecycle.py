"""Unit tests of the alert lifecycle (`alerts.lifecycle`): pending, firing, resolved."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import pytest

from alerts.base import Alert, Severity, State
from alerts.lifecycle import Episode, advance, alert_id

# 2026-01-01T00:00:00Z in ns: a fixed past.
T0 = 1_767_225_600_000_000_000
SECOND = 1_000_000_000


@dataclass
class Run:
    """One (rule, asset) driven through `advance`, reading by reading, one second apart.

    A reading is True (the condition), False (clear of it) or None: neither, the deadband of
    hysteresis (not the condition, yet not clear: a score between the two levels).
    """

    hits_needed: int = 1
    hold_s: float = 0.0
    resolve_after: int = 1
    every_s: int = 1
    keep_s: float = 0.0
    quiet_s: float = 0.0
    episode: Episode | None = None
    ts: int = T0
    states: list[State | None] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def feed(self, conditions: Sequence[bool | None]) -> list[State | None]:
        """Advance once per condition; return the state changes these readings caused."""
        changes: list[State | None] = []
        for condition in conditions:
            self.ts += self.every_s * SECOND
            ts = self.ts
            self.episode, state = advance(
                self.episode,
                active=condition is True,
                ts=ts,
                hits_needed=self.hits_needed,
                hold_ns=int(self.hold_s * SECOND),
                resolve_after=self.resolve_after,
                start=partial(_alert, ts),
                clear=condition is False,
                keep_ns=int(self.keep_s * SECOND),
                quiet_ns=int(self.quiet_s * SECOND),
            )
            changes.append(state)
            if state is not None and self.episode is not None:
                self.ids.append(self.episode.alert.id)
        self.states.extend(changes)
        return changes

    @property
    def alert(self) -> Alert:
        assert self.episode is not None
        return self.episode.alert


def _alert(ts: int) -> Alert:
    return Alert(
        alert_id("hot", "plant-a", "cnc-1", ts),
        "hot",
        Severity.CRITICAL,
        "plant-a",
        "cnc-1",
        "cnc-mill",
        State.PENDING,
        ts,
        95.0,
        "",
    )


def _at(seconds: int) -> int:
    return T0 + seconds * SECOND


P, F, R = State.PENDING, State.FIRING, State.RESOLVED


def test_episode_goes_pending_firing_resolved_under_one_id() -> None:
    """An episode passes through pending, firing and resolved, keeping one alert id."""
    run = Run(hits_needed=2, resolve_after=1)
    assert run.feed([True, True, False]) == [P, F, R]
    assert len(set(run.ids)) == 1


def test_alert_times_are_when_it_fired_and_resolved() -> None:
    """``started_at`` is the firing reading's time, ``resolved_at`` the resolving one's."""
    run = Run(hits_needed=2, resolve_after=1)
    run.feed([True, True, True, False])
    assert (run.alert.started_at, run.alert.resolved_at) == (_at(2), _at(4))


def test_condition_not_holding_starts_nothing() -> None:
    """Normal readings with no episode leave the asset inactive."""
    run = Run(hits_needed=3)
    assert run.feed([False] * 5) == [None] * 5
    assert run.episode is None


@pytest.mark.parametrize("n", [2, 3, 5, 10], ids=["n2", "n3", "n5", "n10"])
def test_alert_fires_on_the_nth_consecutive_reading(n: int) -> None:
    """With N consecutive readings needed, the Nth one fires, not earlier."""
    run = Run(hits_needed=n)
    assert run.feed([True] * n) == [P] + [None] * (n - 2) + [F]


def test_one_reading_rule_fires_at_once() -> None:
    """N=1 with no duration fires on the first reading, with no pending step."""
    run = Run(hits_needed=1)
    assert run.feed([True]) == [F]


def test_for_duration_holds_the_alert_pending_until_it_has_passed() -> None:
    """With ``for`` 30 s and readings every 10 s, the alert fires on the reading 30 s in."""
    run = Run(hits_needed=1, hold_s=30, every_s=10)
    assert run.feed([True, True, True, True]) == [P, None, None, F]
    assert run.alert.started_at == _at(40)


@pytest.mark.parametrize(
    ("hits_needed", "hold_s", "fires_on"),
    [(3, 6, 7), (6, 2, 6)],
    ids=["duration-longer", "count-longer"],
)
def test_both_count_and_duration_must_hold(hits_needed: int, hold_s: float, fires_on: int) -> None:
    """An alert needing N readings and a duration fires when the later of the two is met."""
    run = Run(hits_needed=hits_needed, hold_s=hold_s)
    changes = run.feed([True] * 10)
    assert changes.index(F) + 1 == fires_on


def test_pending_that_breaks_before_n_never_fires() -> None:
    """One normal reading ends a pending episode: it is forgotten, never fires."""
    run = Run(hits_needed=3)
    assert run.feed([True, True, False, True, True, False]) == [P, None, None, P, None, None]
    assert run.episode is None


def test_pending_count_starts_over_after_a_break() -> None:
    """After a break, N fresh readings in a row are needed again."""
    run = Run(hits_needed=3)
    assert run.feed([True, True, False, True, True, True]) == [P, None, None, P, None, F]


def test_firing_alert_resolves_only_after_m_normal_readings() -> None:
    """Hysteresis: a firing alert resolves on the Mth normal reading in a row."""
    run = Run(hits_needed=1, resolve_after=3)
    assert run.feed([True, False, False, False]) == [F, None, None, R]


def test_one_flagged_reading_restarts_the_count_of_normal_ones() -> None:
    """A reading with the condition among the normal ones keeps the alert firing."""
    run = Run(hits_needed=1, resolve_after=3)
    changes = run.feed([True, False, False, True, False, False, True, False, False])
    assert changes == [F] + [None] * 8
    assert run.alert.state is State.FIRING


def test_hovering_at_the_threshold_fires_once_and_does_not_flap() -> None:
    """Alternating readings after firing produce no resolve/fire churn."""
    run = Run(hits_needed=3, resolve_after=3)
    run.feed([True, True, True] + [False, True] * 20)
    assert [s for s in run.states if s is not None] == [P, F]


def test_a_new_episode_after_resolution_gets_a_new_id() -> None:
    """Once resolved, the next episode of the same rule and asset is a different alert."""
    run = Run(hits_needed=1, resolve_after=1)
    run.feed([True, False, True])
    assert run.states == [F, R, F]
    assert len(set(run.ids)) == 2


def test_the_same_readings_give_the_same_ids() -> None:
    """Ids derive from the episode's start, so a redelivery or replay yields the same ids."""
    first, second = Run(hits_needed=2), Run(hits_needed=2)
    conditions = [True, True, False, True, True, False]
    first.feed(conditions)
    second.feed(conditions)
    assert first.ids == second.ids


def test_alert_id_is_a_function_of_rule_site_asset_and_start() -> None:
    """The same (rule, site, asset, start) always gives the same 16-hex-digit id."""
    ident = alert_id("hot", "plant-a", "cnc-1", T0)
    assert ident == alert_id("hot", "plant-a", "cnc-1", T0)
    assert re.fullmatch(r"[0-9a-f]{16}", ident), ident


@pytest.mark.parametrize(
    "other",
    [
        ("cold", "plant-a", "cnc-1", T0),
        ("hot", "plant-b", "cnc-1", T0),
        ("hot", "plant-a", "cnc-2", T0),
        ("hot", "plant-a", "cnc-1", T0 + 1),
    ],
    ids=["rule", "site", "asset", "start"],
)
def test_alert_id_differs_when_any_part_differs(other: tuple[str, str, str, int]) -> None:
    """Different episodes never share an id."""
    assert alert_id("hot", "plant-a", "cnc-1", T0) != alert_id(*other)


# --- hysteresis, minimum firing duration, the hold of a flapping alert ----------------------


def test_readings_in_the_deadband_keep_a_firing_alert_firing() -> None:
    """Hysteresis: readings neither flagged nor below the lower level never resolve it."""
    run = Run(resolve_after=3)
    assert run.feed([True, *[None] * 20]) == [F] + [None] * 20
    assert run.alert.state is State.FIRING


def test_a_deadband_reading_restarts_the_count_of_clear_ones() -> None:
    """Resolving needs `resolve_after` clear readings in a row; one in the deadband resets it."""
    run = Run(resolve_after=3)
    assert run.feed([True, False, False, None, False, False, False]) == [
        F,
        None,
        None,
        None,
        None,
        None,
        R,
    ]


def test_a_deadband_reading_does_not_start_an_episode() -> None:
    """Only the condition starts an episode: the deadband is not it."""
    run = Run(hits_needed=2)
    assert run.feed([None, None, None]) == [None] * 3
    assert run.episode is None


def test_keep_firing_for_holds_the_alert_until_it_has_fired_that_long() -> None:
    """With ``keep_firing_for`` 10 s, clear readings from the start resolve it 10 s after firing."""
    run = Run(resolve_after=1, keep_s=10)
    changes = run.feed([True, *[False] * 15])
    assert changes.index(R) == 10
    assert run.alert.resolved_at - run.alert.started_at == 10 * SECOND


def test_keep_firing_for_still_needs_the_clear_readings_of_hysteresis() -> None:
    """Past ``keep_firing_for``, the alert waits for `resolve_after` clear readings in a row."""
    run = Run(resolve_after=3, keep_s=2)
    assert run.feed([True, True, True, True, False, False, False]) == [F] + [None] * 5 + [R]


def test_the_condition_coming_back_inside_keep_firing_for_keeps_one_alert() -> None:
    """Clear, then the condition again within the minimum duration: the same alert fires on."""
    run = Run(resolve_after=1, keep_s=10)
    run.feed([True, False, False, True, False])
    assert [s for s in run.states if s is not None] == [F]
    assert len(set(run.ids)) == 1


def test_a_quiet_hold_resolves_only_after_the_condition_has_been_quiet_that_long() -> None:
    """With ``quiet_ns`` (a flapping alert), it resolves 20 s after the last reading with it."""
    run = Run(resolve_after=1, quiet_s=20)
    changes = run.feed([True, False, True, False, None, *[False] * 30])
    resolved = changes.index(R) + 1  # readings are one second apart, the first at 1 s
    assert resolved == 5 + 20  # the deadband at 5 s was not quiet either


def test_a_quiet_hold_absorbs_the_churn_into_one_alert() -> None:
    """Condition on and off for a while under a quiet hold: one firing, nothing else."""
    run = Run(resolve_after=1, quiet_s=30)
    run.feed([True, False] * 40)
    assert [s for s in run.states if s is not None] == [F]
