"""When the alert engine saves, and where: the instance's file, and the assets' shared store.

Alerts that fire, resolve or are acked, silences, shelves, labels, and notifications with the
dispatcher's log are committed with the batch that caused them, before its acks
(docs/design.md §7). Last-reading times, the clock, the health map and advice follow within a
wall second: after a crash they are recomputed from the readings that come again.

Where assets' alert state is shared (``alerts.state_url``, `alerts.assetstate`), each save is
cut in two: the instance's part (outbox, groups, silences, shelves, site-wide alerts) goes to
``alerts.db`` first, then the assets' part (episodes, what each receiver was told, flaps,
last readings, health) to the shared store. In that order a crash between the two can make a
new owner tell a receiver again (at least once, as everywhere), never leave a notification
unsent. A shared save that fails is kept and tried again with the next save, and the batch
is acked as when ``alerts.db`` refuses a save: the state is recomputed from what comes next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Mapping

from alerts.assetstate import SharedAlertState, SharedChanges, take_shared
from alerts.base import AssetKey
from alerts.errors import SharedStateError
from alerts.fleet import TrackedAsset
from alerts.state import AlertState, Changes
from ingest.errors import StoreError
from ingest.logthrottle import ThrottledLog

log = logging.getLogger(__name__)

#: What a restart can recompute (last-reading times, health, advice) is saved at most once
#: per wall second: a deadman's minutes make a second's staleness harmless.
_SAVE_LAZY_EVERY = 1.0


class Saver:
    """What the engine saves next (`changes`), and when: now, or within a second.

    Parameters
    ----------
    state
        The alerts' file.
    wall
        Wall-clock seconds.
    shared
        Where assets' alert state is shared by a cluster's instances; None keeps all of it in
        `state`.
    """

    def __init__(
        self,
        state: AlertState,
        wall: Callable[[], float],
        shared: SharedAlertState | None = None,
    ) -> None:
        self.state = state
        self.wall = wall
        self.shared = shared
        self.changes = Changes()
        #: Assets heard from since the last lazy save (their last-reading times are due).
        self.seen: set[AssetKey] = set()
        #: The assets' part of the saves that has not reached the shared store yet.
        self.unshared = SharedChanges()
        #: Assets the shared store says another instance holds: the engine lets them go.
        self.taken: set[AssetKey] = set()
        self._saved_at = 0.0
        self._log = ThrottledLog(log, interval=60.0)

    def save(
        self, assets: Mapping[AssetKey, TrackedAsset], newest: int, *, force: bool = False
    ) -> bool:
        """Commit what must survive a crash now, the rest at most once a second (or `force`).

        `newest` is the fleet clock's. False when the instance's file refused the commit:
        the changes are kept and retried with the next save.
        """
        pending = self.changes
        wall = self.wall()
        lazy = force or wall - self._saved_at >= _SAVE_LAZY_EVERY
        if not (pending.urgent or lazy or self.unshared):
            return True
        if lazy:
            for key in self.seen:
                a = assets[key]
                pending.assets[key] = (a.kind, a.last_ts, a.heard)
            self.seen = set()
            pending.kv["clock"] = {"newest": newest}
        if self.shared is not None:
            moved = take_shared(pending)
            moved.clock = newest
            self.unshared.merge(moved)
        try:
            self.state.save(pending, wall)
        except StoreError as exc:
            self._log.error("save", "saving alert state failed, will retry: %s", exc)
            return False
        self.changes = Changes()
        if lazy:
            self._saved_at = wall
        if self.shared is not None and self.unshared:
            self._share(self.shared)
        return True

    def _share(self, shared: SharedAlertState) -> None:
        """Save the assets' part; kept for the next save when the shared store refuses."""
        try:
            taken = shared.save(self.unshared)
        except SharedStateError as exc:
            self._log.error("share", "saving the shared alert state failed, will retry: %s", exc)
            return
        self.unshared = SharedChanges()
        self.taken |= taken

    def drop(self, keys: Container[AssetKey]) -> None:
        """Forget what waits to be saved of these assets (no longer this instance's)."""
        self.seen = {k for k in self.seen if k not in keys}
        self.unshared.drop(keys)
        pending = take_shared(self.changes)
        pending.drop(keys)
        self.changes.episodes.update(pending.episodes)
        self.changes.flaps.update(pending.flaps)
        self.changes.told.update(pending.told)
        self.changes.assets.update(pending.assets)
        self.changes.health.update(pending.health)
