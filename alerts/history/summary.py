"""The weekly review's figures: per asset and per rule, how often, how true, how fast.

For each asset and each rule over a set of episodes: how many fired, how many were judged
false alarms (last verdict ``normal``) or confirmed faults (``fault``), the mean time to
acknowledge (firing to the first ack, over the acknowledged episodes) and the mean time to
resolve (firing to resolution, over the resolved ones). These are ISA-18.2's and EEMUA 191's
alarm-performance figures a maintenance lead reviews each week.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alerts.history.episodes import Episode

_NS = 1_000_000_000


@dataclass(slots=True)
class Tally:
    """The counts of one asset or one rule."""

    key: str
    fired: int = 0
    false_alarms: int = 0
    faults: int = 0
    acked: int = 0
    ack_ns: int = 0
    resolved: int = 0
    resolve_ns: int = 0

    def add(self, episode: Episode) -> None:
        """Count one episode."""
        self.fired += 1
        verdict = episode.verdict()
        self.false_alarms += verdict == "normal"
        self.faults += verdict == "fault"
        if episode.fired is None:
            return
        ack = episode.first("ack")
        if ack is not None:
            self.acked += 1
            self.ack_ns += max(0, ack.at - episode.fired)
        if episode.resolved is not None:
            self.resolved += 1
            self.resolve_ns += max(0, episode.resolved - episode.fired)

    @property
    def mtta(self) -> float | None:
        """Mean seconds to acknowledge; None when none was acknowledged."""
        return self.ack_ns / self.acked / _NS if self.acked else None

    @property
    def mttr(self) -> float | None:
        """Mean seconds to resolve; None when none resolved."""
        return self.resolve_ns / self.resolved / _NS if self.resolved else None

    def to_json(self) -> dict[str, Any]:
        """The tally in the ``history`` reply (seconds rounded to the millisecond)."""
        return {
            "key": self.key,
            "fired": self.fired,
            "false_alarms": self.false_alarms,
            "faults": self.faults,
            "acked": self.acked,
            "mtta_s": None if self.mtta is None else round(self.mtta, 3),
            "resolved": self.resolved,
            "mttr_s": None if self.mttr is None else round(self.mttr, 3),
        }


def tally(episodes: Iterable[Episode], key: Callable[[Episode], str]) -> list[Tally]:
    """One `Tally` per key, most fired first (then by key).

    Examples
    --------
    >>> from alerts.history.episodes import Action
    >>> e = Episode("1", "hot", "critical", "s", "a", fired=0, resolved=60 * _NS)
    >>> e.actions.append(Action("ack", "ana", 30 * _NS))
    >>> t, = tally([e, Episode("2", "hot", "critical", "s", "a", fired=0)], lambda e: e.rule)
    >>> t.fired, t.mtta, t.mttr
    (2, 30.0, 60.0)
    """
    tallies: dict[str, Tally] = {}
    for episode in episodes:
        name = key(episode)
        found = tallies.get(name)
        if found is None:
            found = tallies[name] = Tally(name)
        found.add(episode)
    return sorted(tallies.values(), key=lambda t: (-t.fired, t.key))


def summary(episodes: Iterable[Episode]) -> dict[str, Any]:
    """Tallies per asset (``site/asset``) and per rule, and over everything."""
    listed = list(episodes)
    everything = Tally("all")
    for episode in listed:
        everything.add(episode)
    return {
        "assets": [t.to_json() for t in tally(listed, lambda e: f"{e.site}/{e.asset}")],
        "rules": [t.to_json() for t in tally(listed, lambda e: e.rule)],
        "all": everything.to_json(),
    }
