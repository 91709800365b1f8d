"""The engine's room for assets that change instance: give them up, take them over.

On a RabbitMQ cluster a partition, and the assets in it, moves between instances when
instances come and go (docs/design.md §10). The instance giving a partition up releases its
assets (`Handover.release`): their whole alert state goes to the shared store
(`alerts.assetstate`), pending episodes included, and the instance forgets them: their
episodes, deadman clock, dispatch and health entry, whose retained messages it clears. The
instance that reads one of them next takes its state over on its first reading
(`Handover.adopt_new`), as the model registry loads a model, and goes on where the other
left: the same alert ids, no second notification of what was told, an on-delay that does not
start over, its health entry published as its own.

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

    # ---- giving up ----

    def state_of(self, keys: Iterable[AssetKey]) -> list[AssetAlerts]:
        """The whole alert state of these tracked assets, as a new holder takes it over."""
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
                    episodes={rule: ep.to_state() for rule, ep in eps.items()},
                    told={r: told[ep.alert.id] for r, ep in eps.items() if ep.alert.id in told},
                    flaps=flaps.get(key, {}),
                    health=None if entry is None else entry.to_state(),
                    shelves=[s.to_state() for s in shelves],
                )
            )
        return states

    def release(self, keys: Collection[AssetKey] | None) -> int:
        """Hand these assets' state over and forget them; None: keep all, saved (shutdown).

        Returns how many assets' state was handed over. A shared store that refuses leaves
        the next holder the state of the last save; the assets are forgotten all the same.
        """
        keep = keys is None
        chosen = list(self.assets) if keys is None else [k for k in keys if k in self.assets]
        handed = 0
        if self.shared is not None and chosen:
            try:
                taken = self.shared.hand_over(self.state_of(chosen), keep=keep)
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

    def adopt_new(self, observations: Iterable[Observation], now: int) -> None:
        """Take over the saved state of the assets of a batch this instance does not track.

        Raises `SharedStateError` when the shared store cannot be read: the batch goes
        unjudged rather than judged from nothing (which could notify twice).
        """
        if self.shared is None:
            return
        assets = self.assets
        unknown = {(o.site, o.asset) for o in observations} - assets.keys()
        if unknown:
            for saved in self.shared.claim(unknown).values():
                self.adopt(saved, now)

    def adopt(self, saved: AssetAlerts, now: int) -> TrackedAsset:
        """Track an asset from its saved state, as the instance that held it left it.

        Its groups wait and its health is looked at from `now`, or from when the asset was
        last heard if this instance's clock is behind (it has heard nothing yet).
        """
        now = max(now, saved.heard, saved.last_ts)
        a = TrackedAsset(saved.site, saved.asset, saved.kind, saved.last_ts, saved.heard)
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

    def adopt_held(self, now: int) -> int:
        """Take back the assets this instance held when it stopped; return how many."""
        if self.shared is None:
            return 0
        held = self.shared.held()
        for saved in held:
            self.adopt(saved, now)
        return len(held)
