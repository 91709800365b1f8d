"""The engine's room for assets that change instance: give them up, take them over.

On a RabbitMQ cluster a partition, and the assets in it, moves between instances when
instances come and go (docs/design.md §10). The instance giving a partition up releases its
assets (`Handover.release`): their whole alert state goes to the shared store
(`alerts.assetstate`), pending episodes included, and the instance forgets them: their
episodes, deadman clock, dispatch and health entry, whose retained messages it clears. The
instance that reads one of them next claims its state with the batch that brings its first
reading (`Handover.claim_new`) and takes it over at that reading (`Handover.take`), as the
model registry loads a model, and goes on where the other left: the same alert ids, no
second notification of what was told, an on-delay that does not start over, its health entry
published as its own, and its deadman clock: the silence the old holder had seen counts, the
time its partition waited to be read does not (the new holder's fleet clock may be ahead).

Without a shared store an instance still forgets what it gives up (it would otherwise call
the assets offline once their readings go elsewhere); the next holder decides afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence

from alerts.assetstate import AssetAlerts, SharedAlertState
from alerts.base import AssetKey, Observation, State
from alerts.dispatch import Dispatcher
from alerts.episodes import Episodes
from alerts.errors import SharedStateError
from alerts.fleet import AnyRule, TrackedAsset
from alerts.health.map import HealthMap
from alerts.health.status import AssetHealth
from alerts.saver import Saver
from alerts.shelves import Shelf, Shelves

log = logging.getLogger(__name__)


class Handover:
    """Releases, adopts and forgets assets for the engine, over its rooms.

    Parameters
    ----------
    rules
        The alert rules (an adopted asset's scope).
    assets
        The engine's tracked assets.
    episodes, dispatcher, shelves, health, saver
        The engine's rooms.
    shared
        Where assets' alert state is shared; None: an asset given up is only forgotten.
    """

    def __init__(
        self,
        rules: Sequence[AnyRule],
        assets: dict[AssetKey, TrackedAsset],
        *,
        episodes: Episodes,
        dispatcher: Dispatcher,
        shelves: Shelves,
        health: HealthMap,
        saver: Saver,
        shared: SharedAlertState | None,
    ) -> None:
        self.rules = list(rules)
        self.assets = assets
        self.episodes = episodes
        self.dispatcher = dispatcher
        self.shelves = shelves
        self.health = health
        self.saver = saver
        self.shared = shared
        #: Assets of the batch in hand this instance claimed, taken over at their reading.
        self.claimed: dict[AssetKey, AssetAlerts] = {}

    # ---- giving up ----

    def state_of(self, keys: Iterable[AssetKey], newest: int) -> list[AssetAlerts]:
        """The whole alert state of these tracked assets, as a new holder takes it over.

        `newest` is the fleet clock's now.
        """
        wanted = {k: self.episodes.of(k) for k in keys if k in self.assets}
        flaps: dict[AssetKey, dict[str, list[int]]] = {}
        for (rule, site, asset), times in self.episodes.flaps.history.items():
            if (site, asset) in wanted:
                flaps.setdefault((site, asset), {})[rule] = list(times)
        firing = [
            ep.alert.id
            for eps in wanted.values()
            for ep in eps.values()
            if ep.alert.state is State.FIRING
        ]
        told = self.dispatcher.told(firing)
        states = []
        for key, eps in wanted.items():
            a = self.assets[key]
            entry = self.health.entries.get(key)
            shelves = [s for ep in eps.values() if (s := self.shelves.get(ep.alert.id))]
            states.append(
                AssetAlerts(
                    a.site,
                    a.asset,
                    a.kind,
                    a.last_ts,
                    a.heard,
                    newest,
                    episodes={rule: ep.to_state() for rule, ep in eps.items()},
                    told={r: told[ep.alert.id] for r, ep in eps.items() if ep.alert.id in told},
                    flaps=flaps.get(key, {}),
                    health=None if entry is None else entry.to_state(),
                    shelves=[s.to_state() for s in shelves],
                )
            )
        return states

    def release(self, keys: Collection[AssetKey] | None, newest: int) -> int:
        """Hand these assets' state over and forget them; None: keep all, saved (shutdown).

        Returns how many assets' state was handed over. A shared store that refuses leaves
        the next holder the state of the last save; the assets are forgotten all the same.
        """
        keep = keys is None
        chosen = list(self.assets) if keys is None else [k for k in keys if k in self.assets]
        handed = 0
        if self.shared is not None and chosen:
            try:
                taken = self.shared.hand_over(self.state_of(chosen, newest), keep=keep)
                handed = len(chosen) - len(taken)
            except SharedStateError as exc:
                log.error("handing the alert state of %d assets over failed: %s", len(chosen), exc)
        if not keep:
            self.forget(chosen, clear=True)
        return handed

    def forget(self, keys: Collection[AssetKey], *, clear: bool) -> None:
        """Let these assets go: episodes, dispatch, shelves, deadman clock, health entry.

        With `clear`, their retained health and advice are cleared too (they were given up;
        without, another instance's messages are there already). Nothing of them is saved
        to the shared store from now on; without one, their rows leave ``alerts.db``.
        """
        keys = {k for k in keys if k in self.assets}
        if not keys:
            return
        alerts, flaps = self.episodes.forget(keys)
        firing = [a.id for a in alerts if a.state is State.FIRING]
        self.dispatcher.forget(firing)
        changes = self.saver.changes
        for alert_id in firing:
            if self.shelves.put(alert_id, None) is not None:
                changes.shelves[alert_id] = None
        for key in keys:
            del self.assets[key]
        self.health.forget(keys, clear=clear)
        self.saver.drop(keys)
        if self.shared is None:
            changes.episodes.update((a.key, None) for a in alerts if a.state is State.FIRING)
            changes.flaps.update(dict.fromkeys(flaps))
            changes.forgotten |= keys
        log.info("let %d assets go to another instance", len(keys))

    # ---- taking over ----

    def claim_new(self, observations: Iterable[Observation]) -> None:
        """Claim the saved state of the assets of a batch this instance does not track.

        Raises `SharedStateError` when the shared store cannot be read: the batch goes
        unjudged rather than judged from nothing (which could notify twice).
        """
        if self.shared is None:
            return
        unknown = {(o.site, o.asset) for o in observations} - self.assets.keys()
        self.claimed = self.shared.claim(unknown) if unknown else {}

    def take(self, key: AssetKey, newest: int) -> TrackedAsset | None:
        """Take a claimed asset over at its first reading (None: it had no saved state)."""
        saved = self.claimed.pop(key, None)
        return None if saved is None else self.adopt(saved, newest)

    def adopt(self, saved: AssetAlerts, newest: int) -> TrackedAsset:
        """Track an asset from its saved state, as the instance that held it left it.

        `newest` is this instance's fleet clock. Where it runs ahead of the old holder's
        (the partition waited to be read), the asset's silence is what the old holder saw.
        """
        now = max(newest, saved.clock)
        heard = saved.heard + now - saved.clock if saved.clock else saved.heard
        a = TrackedAsset(saved.site, saved.asset, saved.kind, saved.last_ts, heard)
        a.scope(self.rules)
        self.assets[saved.key] = a
        firing: set[str] = set()
        for ep in self.episodes.adopt(saved.key, saved.episodes, saved.flaps):
            alert = ep.alert
            if alert.state is not State.FIRING:
                continue
            firing.add(alert.id)
            if alert.extra.get("type") == "deadman":
                a.silent.add(alert.rule)
            self.dispatcher.adopt(alert, saved.told.get(alert.rule, {}), now)
        for data in saved.shelves:
            shelf = Shelf.from_state(data)
            if shelf.alert_id in firing:
                self.shelves.put(shelf.alert_id, shelf)
                self.saver.changes.shelves[shelf.alert_id] = shelf.to_state()
        if saved.health is not None:
            self.health.adopt(AssetHealth.from_state(saved.health), now)
        else:
            self.health.mark(saved.key, now)
        return a

    def adopt_held(self, newest: int) -> int:
        """Take back the assets this instance held when it stopped; return how many."""
        if self.shared is None:
            return 0
        held = self.shared.held()
        for saved in held:
            self.adopt(saved, newest)
        return len(held)
