"""The health map as the engine keeps it: the entries, the reroute advice, what may change.

The engine marks an asset whenever something that decides its health changes (a first
reading, a new kind, an alert's transition, a shelf, a silence) with the event time of the
change; `HealthMap.refresh` then looks at the marked assets only, records the entries that
changed (``health`` points, the map's history) and ranks reroute advice again when a status
changed or, while advice stands, every few seconds as scores and loads drift. What changed
goes into the next save and is published after it (`alerts.health.broadcast`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from alerts.base import SITE_WIDE, Alert, AssetKey, EpisodeKey, Labels, Publisher
from alerts.fleet import TrackedAsset
from alerts.health import reroute
from alerts.health.broadcast import Broadcaster
from alerts.health.peers import Peers
from alerts.health.status import AssetHealth, examine
from alerts.lifecycle import Episode
from alerts.metrics import AlertMetrics
from alerts.shelves import Shelves
from alerts.state import Changes
from ingest.base import Point

_NS = 1_000_000_000
#: Standing reroute advice is ranked again this often (event time) as scores and loads drift.
_ADVICE_EVERY_NS = 10 * _NS
#: The healthy fleet is ranked for reroute advice at most this often (event time).
_RANK_EVERY_NS = 5 * _NS


class HealthMap:
    """Each asset's health and reroute advice, refreshed where marked, published once saved.

    Parameters
    ----------
    metrics
        Counts the changes of status.
    publisher
        Where health and reroute messages go (None: not published, e.g. offline use).
    prefix
        Topic prefix of the messages.
    settings
        Ranking of reroute advice.
    peers
        The health other instances publish: reroute candidates beyond this instance.
    """

    def __init__(
        self,
        metrics: AlertMetrics,
        publisher: Publisher | None,
        prefix: str,
        settings: reroute.RerouteSettings,
        peers: Peers,
    ) -> None:
        self.entries: dict[AssetKey, AssetHealth] = {}
        self.advice: dict[AssetKey, dict[str, Any]] = {}
        self.reroute = settings
        self.peers = peers
        self.broadcast = Broadcaster(publisher, prefix, peers.instance)
        self.metrics = metrics
        #: The silences and windows muting when the map was last looked at: a change may
        #: change any asset.
        self.silence_ids: frozenset[str] = frozenset()
        #: Assets whose health may have changed, with the event time of the latest change.
        self._dirty: dict[AssetKey, int] = {}
        self._points: list[Point] = []
        self._advice_at = 0
        self._ranked_at = 0
        self._ranking: dict[str, list[AssetKey]] | None = None
        #: Another instance's health changed: rank the fleet again at the next refresh.
        self._peers_changed = False

    def peers_changed(self) -> None:
        """The fleet beyond this instance changed: candidates may come or go."""
        self._peers_changed = True
        self._ranking = None

    def mark(self, key: AssetKey, ts: int) -> None:
        """The asset's health may have changed at event time `ts`."""
        self._dirty[key] = ts

    def mark_all(self, keys: Iterable[AssetKey], ts: int) -> None:
        """Every one of these assets' health may have changed at `ts`."""
        self._dirty.update(dict.fromkeys(keys, ts))

    def mark_alert(self, alert: Alert, ts: int, keys: Iterable[AssetKey]) -> None:
        """The alert's asset may have changed (each asset of its site, if site-wide)."""
        if alert.asset == SITE_WIDE:
            self._dirty.update({k: ts for k in keys if k[0] == alert.site})
        else:
            self._dirty[(alert.site, alert.asset)] = ts

    def points(self) -> list[Point]:
        """The ``health`` records of the changes since the last call."""
        points, self._points = self._points, []
        return points

    def refresh(
        self,
        now: int,
        assets: Mapping[AssetKey, TrackedAsset],
        episodes: Mapping[EpisodeKey, Episode],
        maintenance: Callable[[Labels, int], str | None],
        shelves: Shelves,
        changes: Changes,
    ) -> None:
        """Look at the marked assets and the advice; stage what changed, saved in `changes`.

        `maintenance` gives the reason an asset (its labels) is in maintenance at `now`: a
        silence or a route's mute interval; None when it is not.
        """
        changed: list[AssetHealth] = []
        reranked = False
        for key, at in self._dirty.items():
            a = assets.get(key)
            if a is None:
                continue
            open_alerts = [episodes[(name, a.site, a.asset)].alert for name in a.open]
            before = self.entries.get(key)
            h = examine(before, a, open_alerts, maintenance(a.labels(), now), at, shelves)
            if h is None:
                continue
            reranked = reranked or (
                before is None or (before.status, before.kind) != (h.status, h.kind)
            )
            self.entries[key] = h
            changed.append(h)
            # The health map's history, for dashboards: one record per change.
            self._points.append(
                Point(
                    "health",
                    {"site": h.site, "asset": h.asset},
                    {"status": h.status, "score": h.score or 0.0, "reason": h.reason},
                    h.since,
                )
            )
            changes.health[key] = h.to_state()
            self.metrics.health_changes.labels(h.status).inc()
        self._dirty.clear()
        advice: dict[AssetKey, dict[str, Any] | None] = {}
        # A status change moves candidates in or out; scores and loads drift slowly, so the
        # ranking is looked at again only every few seconds of event time while advice stands.
        drifted = bool(self.advice) and now - self._advice_at >= _ADVICE_EVERY_NS
        if (reranked or drifted or self._peers_changed) and self.reroute.enabled:
            self._peers_changed = False
            advice = self._readvise(now, assets)
            changes.kv["advice"] = list(self.advice.values())
        self.broadcast.stage(changed, advice)

    def _readvise(
        self, now: int, assets: Mapping[AssetKey, TrackedAsset]
    ) -> dict[AssetKey, dict[str, Any] | None]:
        """The advice that changed (None: cleared), kept in `advice`."""
        fleet = {**self.peers.live(), **self.entries}

        def score(key: AssetKey) -> float | None:
            a = assets.get(key)
            if a is not None:
                return a.score
            peer = fleet.get(key)  # another instance's asset: its score when it last changed
            return peer.score if peer is not None else None

        self._advice_at = now
        published = {k: reroute.identity(v) for k, v in self.advice.items()}
        if self._ranking is None or now - self._ranked_at >= _RANK_EVERY_NS:
            # One sort of the fleet every few seconds at most: advice for an asset that
            # fails now goes out now, walking a ranking a few seconds old (candidates
            # that failed since are skipped).
            self._ranked_at = now
            names = self.reroute.load_metrics
            loads = {k: load for k, a in assets.items() if (load := a.load(names)) is not None}
            self._ranking = reroute.rank(fleet.values(), loads, score)
        advice = reroute.refresh(
            self.entries, published, self._ranking, self.reroute.max_candidates, score, fleet
        )
        for key, payload in advice.items():
            if payload is None:
                self.advice.pop(key, None)
            else:
                self.advice[key] = payload
        return advice

    def adopt(self, h: AssetHealth, now: int) -> None:
        """An asset's entry as the instance that held it left it: published with the next save.

        The asset is looked at again at `now`, and the advice ranked again.
        """
        key = (h.site, h.asset)
        self.entries[key] = h
        self.broadcast.stage([h], {})
        self._dirty[key] = now
        self.peers_changed()

    def forget(self, keys: Collection[AssetKey], *, clear: bool) -> None:
        """Let these assets' entries and advice go (another instance holds them now).

        With `clear`, their retained health and advice are cleared (empty retained messages),
        so that the fleet sees only what their new holder publishes (`Broadcaster.settle`
        waits until the broker has them).
        """
        gone = [k for k in keys if self.entries.pop(k, None) is not None]
        advised = [k for k in keys if self.advice.pop(k, None) is not None]
        for key in keys:
            self._dirty.pop(key, None)
        self.broadcast.drop(keys)
        self._ranking = None
        if clear:
            self.broadcast.clear(gone, advised)

    def publish(self) -> None:
        """Publish the changes staged: the save that holds them succeeded."""
        self.broadcast.publish()

    def republish(self) -> None:
        """Publish the whole map and all advice again (after the broker reconnects)."""
        for h in self.entries.values():
            self.broadcast.health(h)
        for key, advice in self.advice.items():
            self.broadcast.advice(key, advice)

    def restore(
        self,
        entries: Mapping[AssetKey, dict[str, Any]],
        advice: Iterable[dict[str, Any]],
        keys: Iterable[AssetKey],
        now: int,
    ) -> None:
        """Take the saved map and advice back, and look at every asset in `keys` once.

        Health may have been left behind by a crash between save and publish, or by a
        silence that ended while we were down; saved advice may be stale (saved lazily).
        """
        for key, data in entries.items():
            self.entries[key] = AssetHealth.from_state(data)
        for payload in advice:
            self.advice[(payload["site"], payload["asset"])] = payload
        self.mark_all(keys, now)
        self._advice_at = -_ADVICE_EVERY_NS
