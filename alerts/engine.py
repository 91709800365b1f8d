"""The alert engine: rules over each reading, alert lifecycles and their dispatch.

It sees every batch of readings once, with their verdicts (`Observation`), after scoring and
before the commit; it returns the ``alert`` records to store with them. Everything it decides
is saved in one transaction per batch with the notifications it queues (`alerts.saver.Saver`),
and only then published (`alerts.health.map`: health map, reroute advice) and handed to the
receivers' couriers. Its rooms: the open episodes and their transitions in
`alerts.episodes`, deadman rules in `alerts.deadman`, alarm hygiene in
`alerts.lifecycle` (hysteresis, minimum firing duration), `alerts.flapping`, `alerts.shelves`;
what alerts say in `alerts.messages`; grouping and muting in `alerts.dispatch`. Commands
(`alerts.commands`: silences, acks, shelves, feedback) arrive on another thread; one lock
serialises them with the batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from alerts import restart
from alerts.assetstate import SharedAlertState
from alerts.base import Alert, AssetKey, Labels, Observation, Publisher, Stage
from alerts.clock import FleetClock
from alerts.deadman import Deadman
from alerts.dispatch import Dispatcher, MuteStage
from alerts.episodes import Episodes
from alerts.fleet import AnyRule, TrackedAsset
from alerts.handover import Handover
from alerts.health.map import HealthMap
from alerts.health.peers import Peers
from alerts.health.reroute import RerouteSettings
from alerts.inhibit import Inhibitor
from alerts.metrics import AlertMetrics
from alerts.route import Route
from alerts.saver import Saver
from alerts.shelves import Shelf, Shelves, ShelveStage
from alerts.silences import Silences
from alerts.state import AlertState
from ingest.base import Point

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: The stale-alert gauge is recounted at least this often (event time): stale is a day.
_CENSUS_EVERY_NS = 60 * _NS


class AlertEngine:
    """Rules and dispatch, over the episodes, health map, deadman and saving rooms.

    Parameters
    ----------
    rules
        The alert rules.
    route
        The routing tree.
    state
        Where everything is saved.
    metrics
        Counters and gauges.
    publisher
        Where health and reroute messages go (None: not published, e.g. offline use).
    prefix
        Topic prefix of the outgoing messages.
    reroute_settings
        Ranking of reroute advice.
    on_queued
        Called after notifications were committed to the outbox (wakes the couriers).
    wall
        Wall-clock seconds (silences, the silent-fleet clock); injectable for tests.
    instance
        This instance's name (``mqtt.client_id``), in its health messages; the health other
        instances publish (`hear`) extends reroute advice and site-wide offline to them.
    shared
        Where a cluster's instances share assets' alert state (`alerts.assetstate`): an
        asset's state is taken over on its first reading and handed over on `release`.
    """

    def __init__(
        self,
        rules: Sequence[AnyRule],
        route: Route,
        state: AlertState,
        *,
        metrics: AlertMetrics,
        publisher: Publisher | None = None,
        prefix: str = "meshwatch",
        reroute_settings: RerouteSettings | None = None,
        on_queued: Callable[[], None] | None = None,
        wall: Callable[[], float] = time.time,
        instance: str = "meshwatch",
        shared: SharedAlertState | None = None,
    ) -> None:
        self.rules = list(rules)
        self.metrics = metrics
        self.on_queued = on_queued
        self.wall = wall
        self.lock = threading.RLock()
        self.assets: dict[AssetKey, TrackedAsset] = {}
        self.saver = Saver(state, wall, shared)
        self.peers = Peers(instance, prefix)
        self.health = HealthMap(
            metrics, publisher, prefix, reroute_settings or RerouteSettings(), self.peers
        )
        self.deadman = Deadman()
        self.silences = Silences(clock=wall)
        self.shelves = Shelves()
        self.dispatcher = Dispatcher(route, metrics)
        self._windows = route.windows()
        self.episodes = Episodes(
            self.rules,
            self.assets,
            metrics=metrics,
            saver=self.saver,
            shelves=self.shelves,
            dispatcher=self.dispatcher,
            health=self.health,
        )
        # The episodes bring a firing alert's message up to date just before it is sent.
        self.dispatcher.describe = self.episodes.describe
        self.handover = Handover(
            self.rules,
            self.assets,
            episodes=self.episodes,
            dispatcher=self.dispatcher,
            shelves=self.shelves,
            health=self.health,
            saver=self.saver,
            shared=shared,
        )
        self.clock = FleetClock(wall=wall)
        self._shelve_stage = ShelveStage(self.shelves, metrics)
        self._inhibitor: tuple[object, Inhibitor] = (None, Inhibitor.of(()))
        self._census: tuple[int, int, int] = (-1, -1, 0)
        restart.restore(self)

    # ---- the pipeline's side ----

    def observe(self, observations: Iterable[Observation]) -> list[Point]:
        """Run the rules over a batch; return the ``alert`` records it caused."""
        with self.lock:
            self.clock.heard()
            if self.saver.shared is not None:  # assets another instance held come with state
                observations = list(observations)
                self.handover.claim_new(observations)
            for obs in observations:
                self._observe(obs)
            self.handover.claimed.clear()
            return self._settle()

    def tick(self) -> list[Point]:
        """Advance time without readings (deadman, flushes, silences that start or end)."""
        with self.lock:
            return self._settle()

    def health_points(self) -> list[Point]:
        """The ``health`` records of the changes since the last call (the map's history)."""
        with self.lock:
            return self.health.points()

    def commit(self) -> None:
        """The points returned so far are stored: save the alert state, then tell the fleet.

        The pipeline calls this after its store committed the batch and before it acks the
        messages (docs/design.md §7's order). A crash before it leaves nothing of the batch saved
        here, and the redelivered readings decide the same again (same alert ids); a crash
        after it is covered by the saved state. Notifications and health go out only now.
        """
        with self.lock:
            self.save_and_tell()

    def hear(self, topic: str, payload: bytes) -> None:
        """Another instance's health or status message (on the alerts connection's thread).

        With shared state, an asset whose health another live instance publishes is that
        instance's now: this one lets it go.
        """
        with self.lock:
            changed = self.peers.hear(topic, payload)
            if self.peers.joined:  # a newcomer learns the fleet from what the others publish
                self.peers.joined = False
                self.health.republish()
            if changed:
                self.health.peers_changed()
                self.deadman.checked_at = 0  # sites spread over instances: look again
                key = self.peers.asset_of(topic)
                if self.saver.shared and key in self.assets and key and self.peers.holder(key):
                    self.handover.forget([key], clear=False)

    def release(self, keys: Collection[AssetKey] | None) -> int:
        """Hand these assets over and forget them (None: save all, keep); return how many.

        For a clustered source giving partitions up, after its last commit of them
        (`alerts.handover`, docs/design.md §10).
        """
        with self.lock:
            self.save_and_tell()
            handed = self.handover.release(keys, self.clock.newest)
            self.save_and_tell()
        self.health.broadcast.settle()  # off the lock: the PUBACK's thread may need it
        return handed

    def republish(self) -> None:
        """Publish the whole health map and all advice again (after the broker reconnects)."""
        with self.lock:
            self.health.republish()

    def open_alerts(self) -> list[Alert]:
        """Alerts pending or firing now."""
        with self.lock:
            return self.episodes.alerts()

    def close(self) -> None:
        """Save what is unsaved and close the state file."""
        with self.lock:
            self._save(force=True)
            self.saver.state.close()
            if self.saver.shared is not None:
                self.saver.shared.close()

    # ---- for the commands (`alerts.commands`), under the lock ----

    def save_and_tell(self) -> bool:
        """Save, then publish the health and advice and wake the couriers; False if unsaved."""
        queued = bool(self.saver.changes.notifications)
        if not self._save():
            return False  # published with the next save that succeeds
        self.health.publish()
        if queued and self.on_queued is not None:
            self.on_queued()
        return True

    def retell(self, now: int) -> None:
        """Refresh the health of the assets marked since, and publish it (saved lazily)."""
        self._refresh_health(now)
        self.health.publish()

    # ---- per reading ----

    def _observe(self, obs: Observation) -> None:
        ts = obs.ts
        key = (obs.site, obs.asset)
        a = self.assets.get(key)
        if a is None and self.handover.claimed:  # another instance held it: its state comes
            a = self.handover.take(key, self.clock.newest)
        if a is None:
            a = TrackedAsset(obs.site, obs.asset, obs.kind, ts)
            a.scope(self.rules)
            self.assets[key] = a
            self.health.mark(key, ts)
        elif ts <= a.last_ts:
            return  # redelivered or late: its time has been judged already
        elif obs.kind is not None and obs.kind != a.kind:
            a.kind = obs.kind
            a.scope(self.rules)
            self.health.mark(key, ts)
        # Groups due before this reading are flushed first, at their due time: notifications
        # come out the same however the stream was cut into batches (a replay, a backlog).
        if self.dispatcher.due < ts:
            self._catch_up(ts, inclusive=False)
        a.last_ts = ts
        a.score = obs.score
        a.metrics = obs.metrics
        self.saver.seen.add(key)
        clock = self.clock
        if ts > clock.newest:
            clock.newest = ts
        a.heard = clock.newest
        deadman = self.deadman
        if ts == clock.newest and deadman.due(ts):
            # Inside the batch too: a long batch (a replay) keeps the original timing.
            self._check_deadman(ts)
        if a.silent or obs.site in deadman.sites_down:
            for ekey in deadman.back(a):
                self.episodes.resolve(ekey, ts)
        opened = a.open
        episodes = self.episodes
        if obs.anomalous or opened:
            for rule in a.anomaly:
                active = rule.active(obs)
                if not active and rule.name not in opened:
                    continue
                score = obs.score if obs.score is not None else 0.0
                clear = not active and score < rule.resolve_below  # rule.clears(obs), inline
                episodes.step(rule, a, active, clear, ts, score, obs.top_metric, rule.for_readings)
        metrics = obs.metrics
        for limit, metric, compare, threshold in a.limits:
            value = metrics.get(metric)
            if value is None:
                continue
            hit = compare(value, threshold)
            if not hit and limit.name not in opened:
                continue
            episodes.step(limit, a, hit, not hit, ts, value, metric, 1)

    # ---- deadman ----

    def _check_deadman(self, now: int) -> None:
        elsewhere = self.peers.sites()
        deadman = self.deadman
        for ekey in deadman.revived(elsewhere):
            self.episodes.resolve(ekey, now)
        for rule, alert, ts in deadman.check(
            self.assets.values(), self.episodes.open, now, elsewhere
        ):
            self.episodes.fire(rule, alert, ts)

    # ---- after each batch or tick ----

    def _settle(self) -> list[Point]:
        now = self.clock.now()
        if self.deadman.due(now):
            self._check_deadman(now)
        active = self.muting(now)
        if active != self.health.silence_ids:
            self.health.silence_ids = active
            self.health.mark_all(self.assets, now)
        if due := self.shelves.due(self.wall()):
            self._shelves_over(due, now)
        self._catch_up(self.clock.newest, inclusive=True)
        if self.dispatcher.due <= now:
            # Time the silent fleet's clock took from the wall clock: one flush, not one per
            # interval (silences are wall-clock, so past flushes cannot be judged now).
            self._flush(now)
        self._refresh_health(now)
        census = (self.episodes.transitions, len(self.shelves))
        if census != self._census[:2] or now - self._census[2] >= _CENSUS_EVERY_NS:
            self._census = (*census, now)  # transitions, shelves and time change the gauges
            self.metrics.census(self.episodes.alerts(), census[1], now)
        return self.episodes.points()

    def _shelves_over(self, due: list[Shelf], now: int) -> None:
        """Shelves whose time is up: end them; alerts still firing are announced again."""
        live = {alert.id: alert for alert in self.episodes.alerts()}
        for shelf in due:
            self.shelves.put(shelf.alert_id, None)
            self.saver.changes.shelves[shelf.alert_id] = None
            alert = live.get(shelf.alert_id)
            if alert is not None:
                self.dispatcher.remind(alert)
                self.health.mark_alert(alert, now, self.assets)
            log.info("the shelf of alert %s is over (%s)", shelf.alert_id, shelf.note())

    def _catch_up(self, until: int, *, inclusive: bool) -> None:
        """Flush every group due before `until` (or at it), each at its own due time."""
        dispatcher = self.dispatcher
        while dispatcher.due < until or (inclusive and dispatcher.due == until):
            self._flush(dispatcher.due)

    def _flush(self, now: int) -> None:
        cause = (self.episodes.transitions, self.deadman.down_elsewhere)
        if self._inhibitor[0] != cause:
            # Only a firing or resolving alert (here or, for a site, elsewhere) changes what
            # inhibits what.
            alerts = self.episodes.alerts()
            self._inhibitor = (cause, Inhibitor.of(alerts, self.deadman.down_elsewhere))
        inhibitor = self._inhibitor[1]
        stages: list[Stage] = [
            MuteStage(inhibitor, "inhibited", self.metrics),
            MuteStage(self.silences, "silenced", self.metrics),
            self._shelve_stage,
        ]
        self.saver.changes.notifications.extend(self.dispatcher.flush(now, stages))

    def _refresh_health(self, now: int) -> None:
        changes = self.saver.changes
        episodes = self.episodes.open
        self.health.refresh(now, self.assets, episodes, self.maintenance, self.shelves, changes)

    def maintenance(self, labels: Labels, now: int) -> str | None:
        """Why an asset (its labels) is in maintenance at `now`: a silence, or a mute window."""
        silence = self.silences.maintenance(labels, now)
        if silence is not None:
            return silence.note()
        window = self.dispatcher.root.maintenance_window(labels, now)
        return None if window is None else f"maintenance window {window.name}"

    def muting(self, now: int) -> frozenset[str]:
        """The silences and the routes' time intervals that hold at `now` (by id and name)."""
        active = self.silences.active_ids(now)
        windows = {f"interval:{w.name}" for w in self._windows if w.contains(now)}
        return active | windows if windows else active

    # ---- saving and restarting ----

    def _save(self, *, force: bool = False) -> bool:
        """Save with the dispatcher's log (`Saver.save`); False when the commit failed."""
        saver = self.saver
        if self.dispatcher.dirty:
            if saver.shared is not None:  # a new holder must know who heard what
                saver.changes.told.update(self.dispatcher.told_changed())
            saver.changes.groups.update(self.dispatcher.drain())
        saved = saver.save(self.assets, self.clock.newest, force=force)
        if saver.taken:  # another instance holds these now
            taken, saver.taken = saver.taken, set()
            self.handover.forget(taken, clear=False)
        return saved
