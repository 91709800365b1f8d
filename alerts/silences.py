"""Silences: hold back notifications for matching alerts between a start and an end.

As in Alertmanager, a silenced alert still changes state and is recorded; only its
notifications wait. An asset covered by a silence that selects assets (matchers on
``site``, ``asset`` and ``kind`` only) is under maintenance, and its health says so.
A silence's start and end are wall-clock seconds: it is planned in real time. A repeating
silence (``every``, `alerts.timeintervals`) mutes only inside its recurring window, judged
in event time like a route's time intervals, between its start and its end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from alerts.base import Labels
from alerts.errors import CommandError, RulesError
from alerts.matchers import Matcher, match_all, parse_all
from alerts.timeintervals import TimeInterval, TimeIntervalSpec, describe
from common.timestamps import format_rfc3339

SilenceStatus = Literal["pending", "active", "expired"]
#: The end of a repeating silence given none, until someone expires it: 2199-12-31T23:59:59Z
#: (its nanoseconds still fit the store's 64-bit integers).
UNTIL_EXPIRED = 7_258_118_399.0
_ASSET_LABELS = frozenset({"site", "asset", "kind"})


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence: matchers, a window in wall-clock seconds, who and why.

    Examples
    --------
    >>> s = Silence.create(["site=plant-a", "asset=~cnc-.*"], 100.0, 200.0, "ana", "bearings")
    >>> s.status(50.0), s.status(150.0), s.status(250.0)
    ('pending', 'active', 'expired')
    >>> s.covers({"site": "plant-a", "asset": "cnc-2", "rule": "offline"}, 150.0, 0)
    True
    >>> s.marks_maintenance
    True
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    #: The recurring window it mutes in (None: all the time between start and end).
    every: TimeIntervalSpec | None = None
    window: TimeInterval | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        matchers: Sequence[str],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        every: TimeIntervalSpec | None = None,
        silence_id: str | None = None,
    ) -> Silence:
        """A new silence; raises `CommandError` when it cannot work.

        Its id is `silence_id` (instances given the same command give it the same id, so one
        ``expire`` reaches it everywhere), or a fresh one.
        """
        if not matchers:
            raise CommandError("a silence needs at least one matcher (it would mute everything)")
        if ends_at <= starts_at:
            raise CommandError("a silence must end after it starts")
        if not created_by.strip():
            raise CommandError("a silence needs created_by (who is silencing)")
        if not comment.strip():
            raise CommandError("a silence needs a comment (why: the work order, the repair)")
        try:
            parsed = parse_all(matchers)
        except RulesError as exc:
            raise CommandError(str(exc)) from None
        chosen = silence_id or uuid.uuid4().hex[:16]
        return cls(chosen, parsed, starts_at, ends_at, created_by, comment, *_window(every))

    def status(self, now: float) -> SilenceStatus:
        """Pending before its start, active inside its window, expired after its end."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def covers(self, labels: Labels, now: float, ts: int) -> bool:
        """Whether it mutes now (wall clock `now`, event time `ts`) and its matchers hold."""
        return self.mutes_at(now, ts) and match_all(self.matchers, labels)

    def mutes_at(self, now: float, ts: int) -> bool:
        """Active at wall-clock `now` and, if it repeats, inside its window at event time `ts`."""
        if not self.starts_at <= now < self.ends_at:
            return False
        return self.window is None or self.window.contains(ts)

    def note(self) -> str:
        """The health map's reason for an asset it puts under maintenance."""
        if self.every is not None:
            return f"maintenance every {describe(self.every)} ({self.created_by}: {self.comment})"
        until = _rfc3339(self.ends_at)
        return f"maintenance until {until} ({self.created_by}: {self.comment})"

    @property
    def marks_maintenance(self) -> bool:
        """True when it selects assets, not particular rules or severities."""
        return all(m.label in _ASSET_LABELS for m in self.matchers)

    def expired_at(self, now: float) -> Silence:
        """The silence as ended at `now` (a pending one ends before it started)."""
        return Silence(
            self.id,
            self.matchers,
            min(self.starts_at, now),
            now,
            self.created_by,
            self.comment,
            self.every,
            self.window,
        )

    def to_json(self, now: float) -> dict[str, Any]:
        """The form commands reply with and the state store keeps."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": _rfc3339(self.starts_at),
            "ends_at": _rfc3339(self.ends_at),
            "created_by": self.created_by,
            "comment": self.comment,
            "status": self.status(now),
            "every": None if self.every is None else describe(self.every),
        }

    def to_state(self) -> dict[str, Any]:
        """Exact values for the state store."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            **({} if self.every is None else {"every": self.every.model_dump()}),
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Silence:
        """Inverse of `to_state`."""
        return cls(
            data["id"],
            parse_all(data["matchers"]),
            data["starts_at"],
            data["ends_at"],
            data["created_by"],
            data["comment"],
            *_window(TimeIntervalSpec.model_validate(data["every"]) if "every" in data else None),
        )


def _rfc3339(seconds: float) -> str:
    """Wall-clock seconds in RFC 3339, rounded to the millisecond (exact at year 9999 too)."""
    return format_rfc3339(round(seconds * 1000) * 1_000_000)


def _window(every: TimeIntervalSpec | None) -> tuple[TimeIntervalSpec | None, TimeInterval | None]:
    return every, None if every is None else TimeInterval.of(every)


class Silences:
    """The set of silences; a `Muter` for the notification pipeline.

    Parameters
    ----------
    silences
        Silences restored from the state store.
    clock
        Wall-clock seconds (injectable for tests).
    """

    def __init__(
        self, silences: Iterable[Silence] = (), clock: Callable[[], float] = time.time
    ) -> None:
        self._by_id = {s.id: s for s in silences}
        self.clock = clock

    def add(self, silence: Silence) -> None:
        """Add (or replace, by id) a silence."""
        self._by_id[silence.id] = silence

    def expire(self, silence_id: str) -> Silence:
        """End a silence now; raises `CommandError` for an unknown or already expired id."""
        found = self._by_id.get(silence_id)
        if found is None:
            raise CommandError(f"no silence with id {silence_id!r}")
        now = self.clock()
        if found.status(now) == "expired":
            raise CommandError(f"silence {silence_id} has already expired")
        ended = found.expired_at(now)
        self._by_id[silence_id] = ended
        return ended

    def remove(self, silence_id: str, previous: Silence | None = None) -> None:
        """Undo `add` or `expire`: put back `previous`, or forget the id."""
        if previous is None:
            self._by_id.pop(silence_id, None)
        else:
            self._by_id[silence_id] = previous

    def get(self, silence_id: str) -> Silence | None:
        """The silence with this id."""
        return self._by_id.get(silence_id)

    def all(self, *, include_expired: bool = False) -> list[Silence]:
        """Silences ordered by start; expired ones only when asked."""
        now = self.clock()
        found = [s for s in self._by_id.values() if include_expired or s.status(now) != "expired"]
        return sorted(found, key=lambda s: (s.starts_at, s.id))

    def mutes(self, labels: Labels, ts: int) -> bool:
        """Whether a silence covers an alert with these labels now (event time `ts`)."""
        now = self.clock()
        return any(s.covers(labels, now, ts) for s in self._by_id.values())

    def maintenance(self, labels: Labels, ts: int) -> Silence | None:
        """The silence that puts the asset with these labels under maintenance now."""
        now = self.clock()
        for s in self._by_id.values():
            if s.marks_maintenance and s.covers(labels, now, ts):
                return s
        return None

    def active_ids(self, ts: int) -> frozenset[str]:
        """Ids of the silences muting now (the engine re-evaluates when this changes)."""
        now = self.clock()
        return frozenset(s.id for s in self._by_id.values() if s.mutes_at(now, ts))
