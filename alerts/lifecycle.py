"""The alert lifecycle of one rule on one asset: inactive → pending → firing → resolved.

Pure functions over an `Episode`; the engine owns the episodes and their persistence.
An episode keeps one alert id from its first pending reading to its resolution, which is
what deduplication by (rule, asset) rests on: however often the condition is seen, there is
one alert until it resolves.

Three things keep a firing alert from chattering, each a parameter of `advance`:

- hysteresis: a reading *clears* only when it is well past the condition (an anomaly rule's
  score below its ``resolve_below``), and ``resolve_after`` of them in a row are needed;
- a minimum firing duration (Alertmanager's ``keep_firing_for``): no resolution before the
  alert has been firing that long;
- flap damping's hold (`alerts.flapping`): a flapping alert resolves only once its
  condition has been quiet for a while.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.base import Alert, State


@dataclass(slots=True)
class Episode:
    """The state of one (rule, site, asset): its alert and the counters the rule needs.

    Parameters
    ----------
    alert
        The alert of this episode (pending, firing or, briefly, resolved).
    since
        Event time (ns) when the condition began to hold.
    hits
        Readings in a row with the condition, while pending.
    misses
        Readings in a row that clear the condition, while firing (hysteresis).
    seen
        Event time (ns) of the last reading that did not clear it, while firing (how long the
        condition has been quiet).
    escalated
        Whether its alert is at its rule's escalation level (`alerts.escalation`).
    rise, rise_since
        Readings in a row at the escalation's score, and the event time (ns) of the first.
    fall
        Readings in a row below the escalation's lower score, while escalated.
    """

    alert: Alert
    since: int
    hits: int = 0
    misses: int = 0
    seen: int = 0
    escalated: bool = False
    rise: int = 0
    rise_since: int = 0
    fall: int = 0

    def to_state(self) -> dict[str, Any]:
        """Exact values for the state store."""
        return {
            "alert": self.alert.to_state(),
            "since": self.since,
            "hits": self.hits,
            "misses": self.misses,
            "seen": self.seen,
            "escalated": self.escalated,
            "rise": self.rise,
            "rise_since": self.rise_since,
            "fall": self.fall,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Episode:
        """Inverse of `to_state`.

        An episode saved before ``seen`` existed was seen firing; one saved before levels
        existed is at its rule's own severity, with nothing counted towards a change.
        """
        alert = Alert.from_state(data["alert"])
        seen = data.get("seen", alert.started_at)
        return cls(
            alert,
            data["since"],
            data["hits"],
            data["misses"],
            seen,
            data.get("escalated", False),
            data.get("rise", 0),
            data.get("rise_since", 0),
            data.get("fall", 0),
        )


def alert_id(rule: str, site: str, asset: str, since: int) -> str:
    """The id of the episode that began at `since`: the same after a crash and redelivery.

    Examples
    --------
    >>> alert_id("offline", "plant-a", "cnc-1", 0) == alert_id("offline", "plant-a", "cnc-1", 0)
    True
    >>> len(alert_id("offline", "plant-a", "cnc-1", 0))
    16
    """
    key = f"{rule}\x1f{site}\x1f{asset}\x1f{since}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def advance(
    episode: Episode | None,
    *,
    active: bool,
    ts: int,
    hits_needed: int,
    hold_ns: int,
    resolve_after: int,
    start: Callable[[], Alert],
    clear: bool | None = None,
    keep_ns: int = 0,
    quiet_ns: int = 0,
) -> tuple[Episode | None, State | None]:
    """Move one episode by one observation; return it and its new state when that changed.

    A pending alert fires once the condition held (`active`) for `hits_needed` observations
    in a row and for `hold_ns` of event time; one observation without it ends the pending
    episode (it never fired, so nobody hears of it). A firing alert resolves once three
    things hold: `resolve_after` observations in a row that `clear` it (by default, those
    without the condition; with hysteresis, only those well past it), `keep_ns` of event time
    since it fired, and `quiet_ns` since the last observation that did not clear it.
    `start` makes the alert of a new episode.

    Examples
    --------
    >>> from alerts.base import Severity
    >>> make = lambda: Alert("id", "r", Severity.WARNING, "s", "a", None, State.PENDING, 0, 0, "")
    >>> ep, state = None, None
    >>> for t, on in enumerate([True, True, False, True, True, True, False, False]):
    ...     ep, state = advance(ep, active=on, ts=t, hits_needed=3, hold_ns=0,
    ...                         resolve_after=2, start=make)
    ...     print(t, state)
    0 pending
    1 None
    2 None
    3 pending
    4 None
    5 firing
    6 None
    7 resolved

    With ``keep_ns``, a firing alert outlives its condition:

    >>> ep, _ = advance(None, active=True, ts=0, hits_needed=1, hold_ns=0, resolve_after=1,
    ...                 start=make)
    >>> [advance(ep, active=False, ts=t, hits_needed=1, hold_ns=0, resolve_after=1,
    ...          start=make, keep_ns=3)[1] for t in (1, 2, 3)]
    [None, None, <State.RESOLVED: 'resolved'>]
    """
    if episode is None or episode.alert.state is State.RESOLVED:
        if not active:
            return episode, None
        episode = Episode(start(), since=ts)
        episode.alert.state = State.PENDING
        episode.alert.started_at = ts
        if hits_needed > 1 or hold_ns > 0:
            episode.hits = 1
            return episode, State.PENDING
    alert = episode.alert
    if alert.state is State.PENDING:
        if not active:
            return None, None
        episode.hits += 1
        if episode.hits >= hits_needed and ts - episode.since >= hold_ns:
            alert.state = State.FIRING
            alert.started_at = ts
            episode.seen = ts
            return episode, State.FIRING
        return episode, (State.PENDING if episode.hits == 1 else None)
    # firing
    cleared = not active if clear is None else clear
    if not cleared:
        episode.misses = 0
        episode.seen = ts
        return episode, None
    episode.misses += 1
    if (
        episode.misses >= resolve_after
        and ts - alert.started_at >= keep_ns
        and ts - episode.seen >= quiet_ns
    ):
        alert.state = State.RESOLVED
        alert.resolved_at = ts
        return episode, State.RESOLVED
    return episode, None
