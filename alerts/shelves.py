"""Shelving (ISA-18.2): one firing alert set aside for a while, by someone, for a reason.

A silence mutes whatever its matchers select, for a maintenance window; a shelf mutes one
alert, by its id, for as long as an operator needs to deal with a nuisance: the alert keeps
firing, is recorded and stays in the health map (marked shelved), but its notifications
(repeats, and the announcement of a firing nobody has heard yet) are held back.

A shelf ends in one of three ways:

- at its end time, in wall-clock time as silences are (it is planned in real time);
- when someone unshelves the alert;
- when the alert resolves. ISA-18.2's shelving is temporary suppression of an active alarm,
  and its *one-shot* shelving ends when the alarm returns to normal: a resolved alert has
  nothing left to suppress. The resolution is sent as usual, so whoever heard it fire
  hears that it is over; the next episode is a new alert, and is not shelved.

When a shelf ends on an alert that still fires, the alert is announced again, as ISA-18.2
asks of an alarm that returns from the shelf still active. A shelf lasts at most `MAX_SHELF`:
longer suppression is a silence, with its matchers and its comment (ISA-18.2's "out of
service"), not a shelf.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alerts.base import Alert
from alerts.errors import CommandError
from common.durations import format_duration
from common.timestamps import format_rfc3339

if TYPE_CHECKING:  # the engine passes its metrics in; the Prometheus client is its import
    from alerts.metrics import AlertMetrics

#: The longest shelf, in seconds. ISA-18.2 asks for a time limit on shelving; a day covers
#: a shift and its handover, and an alert firing longer than that is stale (a defect of its
#: own, counted by ``meshwatch_alerts_stale``).
MAX_SHELF = 24 * 3600.0
_NEVER = float("inf")


def check_duration(seconds: float) -> None:
    """Refuse a shelf's duration that is not above 0 or longer than `MAX_SHELF`.

    Raises
    ------
    CommandError
        Naming the duration and the limit.

    Examples
    --------
    >>> check_duration(7200.0)
    >>> check_duration(3 * 86400.0)
    Traceback (most recent call last):
    ...
    alerts.errors.CommandError: a shelf lasts at most 1d (asked for 3d): ...
    """
    if seconds <= 0:
        raise CommandError("a shelf needs a duration above 0 (e.g. 2h)")
    if seconds > MAX_SHELF:
        raise CommandError(
            f"a shelf lasts at most {format_duration(MAX_SHELF)} "
            f"(asked for {format_duration(seconds)}): to mute an alert for longer, silence "
            "its rule on its asset (meshwatch silence add)"
        )


@dataclass(frozen=True, slots=True)
class Shelf:
    """One shelved alert: its id, who shelved it and why, and the window in wall-clock seconds.

    Examples
    --------
    >>> shelf = Shelf.create("9c0e3f2a9c0d1e4b", "ana", "known sensor fault", 0.0, 7200.0)
    >>> shelf.ends_at, shelf.over(7199.0), shelf.over(7200.0)
    (7200.0, False, True)
    >>> shelf.note()
    'shelved by ana until 1970-01-01T02:00:00.000Z: known sensor fault'
    """

    alert_id: str
    by: str
    comment: str
    starts_at: float
    ends_at: float

    @classmethod
    def create(cls, alert_id: str, by: str, comment: str, now: float, duration: float) -> Shelf:
        """A shelf from `now` for `duration` seconds; raises `CommandError` when it cannot be."""
        check_duration(duration)
        if not by.strip():
            raise CommandError("a shelf needs by (who is shelving the alert)")
        return cls(alert_id, by.strip(), comment.strip(), now, now + duration)

    def over(self, now: float) -> bool:
        """Whether its end time has come."""
        return now >= self.ends_at

    def ended(self, now: float) -> Shelf:
        """The shelf as ended at `now` (unshelved early)."""
        return Shelf(self.alert_id, self.by, self.comment, self.starts_at, min(now, self.ends_at))

    def note(self) -> str:
        """Who shelved it until when, and why: what the health map's reason adds."""
        until = format_rfc3339(int(self.ends_at * 1e9))
        return f"shelved by {self.by} until {until}" + (f": {self.comment}" if self.comment else "")

    def to_json(self) -> dict[str, Any]:
        """The form commands reply with."""
        return {
            "alert_id": self.alert_id,
            "by": self.by,
            "comment": self.comment,
            "starts_at": format_rfc3339(int(self.starts_at * 1e9)),
            "ends_at": format_rfc3339(int(self.ends_at * 1e9)),
        }

    def to_state(self) -> dict[str, Any]:
        """Exact values for the state store."""
        return {
            "alert_id": self.alert_id,
            "by": self.by,
            "comment": self.comment,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Shelf:
        """Inverse of `to_state`."""
        return cls(
            data["alert_id"], data["by"], data["comment"], data["starts_at"], data["ends_at"]
        )


class Shelves:
    """The shelves in force, by alert id.

    `next_end` is the earliest end time (infinity without shelves), so the engine learns
    whether one is due with one comparison per batch.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Shelf] = {}
        self.next_end = _NEVER

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._by_id

    def __iter__(self) -> Iterator[Shelf]:
        return iter(sorted(self._by_id.values(), key=lambda s: (s.ends_at, s.alert_id)))

    def get(self, alert_id: str) -> Shelf | None:
        """The shelf of this alert."""
        return self._by_id.get(alert_id)

    def put(self, alert_id: str, shelf: Shelf | None) -> Shelf | None:
        """Set (or, with None, remove) an alert's shelf; return the one it replaces."""
        before = self._by_id.pop(alert_id, None)
        if shelf is not None:
            self._by_id[alert_id] = shelf
        self.next_end = min((s.ends_at for s in self._by_id.values()), default=_NEVER)
        return before

    def restore(self, saved: Iterable[Mapping[str, Any]], firing: Container[str]) -> list[str]:
        """Put back saved shelves of the `firing` alerts; return the ids of those left out.

        A shelf and the end of its alert are saved together, so none is left out unless the
        file was edited by hand; the engine deletes those.
        """
        orphans = []
        for data in saved:
            shelf = Shelf.from_state(data)
            if shelf.alert_id in firing:
                self.put(shelf.alert_id, shelf)
            else:
                orphans.append(shelf.alert_id)
        return orphans

    def due(self, now: float) -> list[Shelf]:
        """The shelves whose end time has come by `now`, earliest first."""
        if now < self.next_end:
            return []
        return [s for s in self if s.over(now)]


class ShelveStage:
    """A notification `Stage` that drops shelved alerts, counting them as muted (shelved).

    Examples
    --------
    >>> from alerts.base import Severity, State
    >>> shelves = Shelves()
    >>> _ = shelves.put("a1", Shelf.create("a1", "ana", "", 0.0, 60.0))
    >>> alerts = [Alert(i, "r", Severity.WARNING, "s", "x", None, State.FIRING, 0, 0, "")
    ...           for i in ("a1", "a2")]
    >>> [a.id for a in ShelveStage(shelves)(alerts, 0)]
    ['a2']
    """

    cause = "shelved"

    def __init__(self, shelves: Shelves, metrics: AlertMetrics | None = None) -> None:
        self.shelves = shelves
        self._muted = metrics.muted.labels("shelved") if metrics is not None else None

    def __call__(self, alerts: list[Alert], now: int) -> list[Alert]:
        """The alerts that are not shelved (shelves end by the wall clock, not at `now`)."""
        if not len(self.shelves):
            return alerts
        kept = [a for a in alerts if a.id not in self.shelves]
        if self._muted is not None and len(kept) < len(alerts):
            self._muted.inc(len(alerts) - len(kept))
        return kept
