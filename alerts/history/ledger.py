"""The ledger: hands people's actions and the queued notifications to the store's batches.

Commands record their ``alert_action`` point through it (`record`, under the engine's lock,
before the command's save); the alert processor `drain`s it into each batch's points and
tells it once the store committed them (`stored`). Notifications are taken from the engine's
unsaved changes right after the batch or tick that queued them, so their ``notification``
points commit with that batch's ``alert`` records (docs/design.md §7).
"""

from __future__ import annotations

import logging
import sqlite3

from alerts.base import Notification
from alerts.engine import AlertEngine
from alerts.history import pending
from alerts.history.records import notification_points
from alerts.state import Changes
from ingest.base import Point

log = logging.getLogger(__name__)


class Ledger:
    """What the store is still to get of the commands and notifications.

    Parameters
    ----------
    engine
        The alert engine: its lock, fleet clock, unsaved changes and state file.
    """

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine
        self._last_stamp = 0
        #: Row id of the newest waiting action handed to a batch not yet committed.
        self._handed = 0
        self._forgotten = 0
        #: The engine's unsaved changes, and how many of their notifications were taken.
        self._changes: Changes | None = None
        self._taken = 0

    def stamp(self) -> int:
        """Event time for an action now: the fleet clock, never the same ns twice in a row.

        Two silences added between batches read the same fleet clock; a nanosecond apart,
        they stay two points (a point is keyed by its tags and time).
        """
        ts = max(self.engine.clock.now(), self._last_stamp + 1)
        self._last_stamp = ts
        return ts

    def record(self, point: Point) -> Point:
        """Save `point` with the command's next save (call under the engine's lock)."""
        self.engine.saver.changes.records.append(point)
        return point

    def withdraw(self, point: Point) -> None:
        """The command's save failed and it changed nothing: drop its point too."""
        records = self.engine.saver.changes.records
        if point in records:
            records.remove(point)

    def drain(self) -> list[Point]:
        """Points for the batch in hand: waiting actions, then notifications queued since.

        Call under the engine's lock, right after the batch or tick, so no command's save
        can take the notifications away unseen.
        """
        engine = self.engine
        points: list[Point] = []
        waiting = pending.waiting(engine.saver.state.conn, self._handed)
        if waiting:
            self._handed = waiting[-1][0]
            points.extend(point for _, point in waiting)
        changes = engine.saver.changes
        if changes is not self._changes:  # saved since: every notification in it is new
            self._changes, self._taken = changes, 0
        queued = changes.notifications[self._taken :]
        if queued:
            self._taken += len(queued)
            by_time: dict[int, list[Notification]] = {}
            for n in queued:
                by_time.setdefault(n.at or engine.clock.now(), []).append(n)
            for ts, group in by_time.items():
                points.extend(notification_points(group, ts))
        return points

    def stored(self) -> None:
        """The store committed every point drained so far: forget the waiting actions."""
        if self._handed > self._forgotten:
            try:
                with self.engine.lock:
                    pending.forget(self.engine.saver.state.conn, self._handed)
            except sqlite3.Error as exc:  # they are stored: handed again, they change nothing
                log.warning("could not drop stored action records (kept for now): %s", exc)
                return
            self._forgotten = self._handed
