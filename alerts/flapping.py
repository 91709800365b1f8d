"""Flap damping and chattering: how often one rule fires on one asset.

An alert that fires and resolves over and over is noise: the people it reaches learn to
ignore it (EEMUA 191). Kapacitor's ``.flapping()`` and Nagios's flap detection hold such an
alert instead of passing each change on; so does this module. `FlapTracker` keeps, for each
(rule, site, asset), the event times of its recent firings. A firing that makes more than
``firings`` of them within ``window`` is *flapping*: the engine marks that alert flapping,
it notifies once, and it stays firing through the churn that follows until its condition has
been quiet for ``quiet`` (`alerts.lifecycle.advance`'s ``quiet_ns``), then resolves once.

The same history counts ISA-18.2's chattering alarms (an alarm that fires and clears three
or more times within a minute), for a metric: chattering is a defect to remove at its rule.
Deadman rules are not damped (their ``for`` already demands minutes of silence per firing),
but their chattering is counted too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from common.durations import Duration, format_duration

#: (rule, site, asset): whose firings a history holds.
FlapKey = tuple[str, str, str]
_NS = 1_000_000_000
#: ISA-18.2 (and EEMUA 191): a chattering alarm fires and clears 3 or more times a minute.
CHATTER_FIRINGS = 3
CHATTER_WINDOW_NS = 60 * _NS


class Flapping(BaseModel):
    """Flap damping of one rule: more than `firings` firings within `window` make one alert.

    The defaults hold an alert that fired more than 3 times in 30 minutes, which is more than
    EEMUA 191's whole budget for one operator (under one alarm per 10 minutes), until its
    condition has been quiet for 15 minutes: half the window, and three times the default
    anomaly rules' ``keep_firing_for``, so the alert that comes out of it is not flapping.

    Examples
    --------
    >>> policy = Flapping(firings=2, window="10m", quiet="5m")
    >>> policy.window_ns // _NS, policy.quiet_ns // _NS
    (600, 300)
    >>> note(policy)
    ' (flapping: it fired more than 2 times in 10m; one alert until quiet for 5m)'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    firings: int = Field(3, ge=1)
    window: Duration = Field(1800.0, gt=0)
    quiet: Duration = Field(900.0, gt=0)

    @property
    def window_ns(self) -> int:
        """`window` in nanoseconds."""
        return int(self.window * _NS)

    @property
    def quiet_ns(self) -> int:
        """`quiet` in nanoseconds."""
        return int(self.quiet * _NS)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one more firing means: the alert is flapping, and it has just begun to chatter."""

    flapping: bool
    chattering: bool


def within(history: Sequence[int], ts: int, span_ns: int) -> int:
    """How many firing times of `history` fall within `span_ns` before `ts` (`ts` counts).

    Examples
    --------
    >>> within([0, 10, 20, 30], 30, 20)
    2
    """
    return sum(1 for t in history if ts - t < span_ns)


def judge(history: Sequence[int], ts: int, policy: Flapping | None) -> Verdict:
    """The verdict on the firing at `ts`, the last of `history`.

    Chattering is reported once, on the firing that makes three within a minute (a fourth
    in the same minute is the same chattering, not another).

    Examples
    --------
    >>> minute = 60 * _NS
    >>> judge([0, 10 * _NS, 20 * _NS], 20 * _NS, None)
    Verdict(flapping=False, chattering=True)
    >>> policy = Flapping()  # more than 3 in 30 minutes
    >>> judge([0, 5 * minute, 10 * minute, 15 * minute], 15 * minute, policy)
    Verdict(flapping=True, chattering=False)
    >>> judge([0, 5 * minute, 10 * minute, 35 * minute], 35 * minute, policy).flapping
    False
    """
    flapping = policy is not None and within(history, ts, policy.window_ns) > policy.firings
    chattering = within(history, ts, CHATTER_WINDOW_NS) == CHATTER_FIRINGS
    return Verdict(flapping, chattering)


def horizon(policies: Iterable[Flapping | None]) -> int:
    """How far back (ns) a history can matter to these rules' verdicts: their longest window.

    Examples
    --------
    >>> horizon([None, Flapping(window="10m")]) // _NS, horizon([]) // _NS
    (600, 60)
    """
    windows = [p.window_ns for p in policies if p is not None]
    return max([CHATTER_WINDOW_NS, *windows])


def note(policy: Flapping) -> str:
    """What a flapping alert's message adds, so a person reading it knows why it stays."""
    return (
        f" (flapping: it fired more than {policy.firings} times in "
        f"{format_duration(policy.window)}; one alert until quiet for "
        f"{format_duration(policy.quiet)})"
    )


class FlapTracker:
    """The recent firing times of every (rule, site, asset) that fired.

    Only as much history is kept as the verdicts need: the rule's flap window, or the minute
    of chattering if that is longer.

    Parameters
    ----------
    history
        Saved histories (`history` of a tracker before a restart).

    Examples
    --------
    >>> tracker = FlapTracker()
    >>> key = ("anomaly", "plant-a", "cnc-1")
    >>> [tracker.fired(key, t * 60 * _NS, Flapping()).flapping for t in (0, 5, 10, 15, 50)]
    [False, False, False, True, False]
    >>> [t // (60 * _NS) for t in tracker.history[key]]
    [50]
    """

    def __init__(self, history: Mapping[FlapKey, Iterable[int]] | None = None) -> None:
        self.history: dict[FlapKey, list[int]] = {
            key: list(times) for key, times in (history or {}).items()
        }

    def fired(self, key: FlapKey, ts: int, policy: Flapping | None) -> Verdict:
        """Record a firing at event time `ts` and judge it."""
        span = max(CHATTER_WINDOW_NS, policy.window_ns if policy is not None else 0)
        kept = [t for t in self.history.get(key, ()) if ts - t < span]
        kept.append(ts)
        self.history[key] = kept
        return judge(kept, ts, policy)

    def forget(self, now: int, horizon_ns: int) -> list[FlapKey]:
        """Drop the histories with no firing within `horizon_ns` before `now`; return their keys.

        The engine calls it on restart, with the longest window of its rules: a history
        that old can no longer make a verdict, and its row can go.
        """
        gone = [
            key for key, times in self.history.items() if not times or now - times[-1] >= horizon_ns
        ]
        for key in gone:
            del self.history[key]
        return gone
