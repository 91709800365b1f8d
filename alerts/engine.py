"""The alert engine: rules over each reading, alert lifecycles, notifications, fleet health.

It sees every batch of readings once, with their verdicts (`Observation`), after scoring and
before the commit; it returns the ``alert`` records to store with them. Everything it decides
is saved to `AlertState` in one transaction per batch with the notifications it queues, and
only then published (health map, reroute advice) and handed to the receivers' couriers.
Commands (silences, acks, shelves, feedback) arrive on another thread; one lock serialises
them with the batches. Alarm hygiene lives in its own modules: hysteresis and the minimum
firing duration in `alerts.lifecycle`, flap damping in `alerts.flapping`, shelving in
`alerts.shelves`, maintenance staff's verdicts in `alerts.commands.feedback`; the engine only wires
them to the episodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from alerts.base import SITE_WIDE, Alert, Observation, Publisher, Stage, State
from alerts.clock import FleetClock
from alerts.dispatch import Dispatcher, MuteStage
from alerts.durations import format_duration
from alerts.errors import CommandError
from alerts.flapping import FlapKey, Flapping, FlapTracker, horizon, note
from alerts.fleet import AnyRule, TrackedAsset, gone_silent, sites_down
from alerts.health import reroute
from alerts.health.broadcast import Broadcaster
from alerts.health.status import AssetHealth, examine
from alerts.inhibit import Inhibitor
from alerts.labels import Label
from alerts.lifecycle import Episode, advance, alert_id
from alerts.metrics import AlertMetrics
from alerts.route import Route
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule
from alerts.shelves import Shelf, Shelves, ShelveStage
from alerts.silences import Silence, Silences
from alerts.state import KEEP_RESOLVED_SECONDS, AlertState, Changes
from ingest.base import Point
from ingest.errors import StoreError
from ingest.logthrottle import ThrottledLog

log = logging.getLogger(__name__)

EpisodeKey = tuple[str, str, str]
AssetKey = tuple[str, str]
_NS = 1_000_000_000
_UNSAVED = "the alert state could not be saved (is the data dir's disk full?); nothing changed"
#: Deadman rules are checked at most once per second of event time: durations are minutes.
_DEADMAN_EVERY_NS = _NS
#: Standing reroute advice is ranked again this often (event time) as scores and loads drift.
_ADVICE_EVERY_NS = 10 * _NS
#: The healthy fleet is ranked for reroute advice at most this often (event time).
_RANK_EVERY_NS = 5 * _NS
#: What a restart can recompute (last-reading times, health, advice) is saved at most once
#: per wall second: a deadman's minutes make a second's staleness harmless.
_SAVE_LAZY_EVERY = 1.0
#: The stale-alert gauge is recounted at least this often (event time): stale is a day.
_CENSUS_EVERY_NS = 60 * _NS


class AlertEngine:
    """Rules, lifecycles, silences, acks, routing, health map and reroute advice.

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
        reroute_settings: reroute.RerouteSettings | None = None,
        on_queued: Callable[[], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.rules = list(rules)
        self.route = route
        self.state = state
        self.metrics = metrics
        self.broadcast = Broadcaster(publisher, prefix)
        self.reroute = reroute_settings or reroute.RerouteSettings()
        self.on_queued = on_queued
        self.wall = wall
        self.lock = threading.RLock()
        self.assets: dict[AssetKey, TrackedAsset] = {}
        self.episodes: dict[EpisodeKey, Episode] = {}
        self.health: dict[AssetKey, AssetHealth] = {}
        self.advice: dict[AssetKey, dict[str, Any]] = {}
        self.silences = Silences(clock=wall)
        self.shelves = Shelves()
        self.flaps = FlapTracker()
        self.dispatcher = Dispatcher(route, metrics, self._describe)
        self._shelve_stage = ShelveStage(self.shelves, metrics)
        self._rules_by_name = {r.name: r for r in self.rules}
        self.clock = FleetClock(wall=wall)
        self._points: list[Point] = []
        self._health_points: list[Point] = []
        self._pending = Changes()
        #: Assets whose health may have changed, with the event time of the latest change.
        self._health_dirty: dict[AssetKey, int] = {}
        self._sites_down: dict[str, set[str]] = {}
        self._seen: set[AssetKey] = set()
        self._deadman_at = 0
        self._saved_at = 0.0
        self._advice_at = 0
        self._transitions = 0
        self._inhibitor = (-1, Inhibitor.of(()))
        self._ranked_at = 0
        self._ranking: dict[str, list[AssetKey]] | None = None
        self._silence_ids: frozenset[str] = frozenset()
        self._census: tuple[int, int, int] = (-1, -1, 0)
        self._log = ThrottledLog(log, interval=60.0)
        self._restore()

    # ---- the pipeline's side ----

    def observe(self, observations: Iterable[Observation]) -> list[Point]:
        """Run the rules over a batch; return the ``alert`` records it caused."""
        with self.lock:
            self.clock.heard()
            for obs in observations:
                self._observe(obs)
            return self._settle()

    def tick(self) -> list[Point]:
        """Advance time without readings (deadman, flushes, silences that start or end)."""
        with self.lock:
            return self._settle()

    def health_points(self) -> list[Point]:
        """The ``health`` records of the changes since the last call (the map's history)."""
        with self.lock:
            points, self._health_points = self._health_points, []
            return points

    def commit(self) -> None:
        """The points returned so far are stored: save the alert state, then tell the fleet.

        The pipeline calls this after its store committed the batch and before it acks the
        messages (DESIGN.md's order). A crash before it leaves nothing of the batch saved
        here, and the redelivered readings decide the same again (same alert ids); a crash
        after it is covered by the saved state. Notifications and health go out only now.
        """
        with self.lock:
            self._save_and_tell()

    def republish(self) -> None:
        """Publish the whole health map and all advice again (after the broker reconnects)."""
        with self.lock:
            for h in self.health.values():
                self.broadcast.health(h)
            for key, advice in self.advice.items():
                self.broadcast.advice(key, advice)

    # ---- commands ----

    def add_silence(self, silence: Silence) -> Silence:
        """Add a silence, save it, and update the health of the assets it covers."""
        with self.lock:
            before = self.silences.get(silence.id)
            self.silences.add(silence)
            if not self._silence_changed(silence):
                self.silences.remove(silence.id, before)
                raise CommandError(_UNSAVED)
            return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (raises `CommandError` for an unknown or expired id)."""
        with self.lock:
            before = self.silences.get(silence_id)
            ended = self.silences.expire(silence_id)
            if not self._silence_changed(ended):
                self.silences.remove(silence_id, before)
                raise CommandError(_UNSAVED)
            return ended

    def ack(self, alert_id_: str, by: str, comment: str = "") -> Alert:
        """Acknowledge a firing alert: no more repeats for this episode."""
        with self.lock:
            key, ep = self._firing(alert_id_)
            ep.alert.acked_by = by
            ep.alert.extra["ack"] = {"by": by, "comment": comment, "at": self.wall()}
            self._pending.episodes[key] = ep.to_state()
            if not self._save_and_tell():
                ep.alert.acked_by = None
                ep.alert.extra.pop("ack")
                raise CommandError(_UNSAVED)
            log.info("alert %s acknowledged by %s: %s", alert_id_, by, comment or "-")
            return ep.alert

    def shelve(
        self, alert_id_: str, by: str, seconds: float, comment: str = ""
    ) -> tuple[Alert, Shelf]:
        """Shelve a firing alert for `seconds` of wall time (again: a new shelf replaces it)."""
        with self.lock:
            alert = self._firing(alert_id_)[1].alert
            shelf = Shelf.create(alert_id_, by, comment, self.wall(), seconds)
            before = self.shelves.put(alert_id_, shelf)
            if not self._shelf_changed(alert, shelf.to_state()):
                self.shelves.put(alert_id_, before)
                raise CommandError(_UNSAVED)
            log.info("alert %s shelved: %s", alert_id_, shelf.note())
            return alert, shelf

    def unshelve(self, alert_id_: str, by: str) -> tuple[Alert, Shelf]:
        """End an alert's shelf now; still firing, it is announced again."""
        with self.lock:
            alert = self._firing(alert_id_)[1].alert
            before = self.shelves.put(alert_id_, None)
            if before is None:
                raise CommandError(f"alert {alert_id_} is not shelved")
            if not self._shelf_changed(alert, None):
                self.shelves.put(alert_id_, before)
                raise CommandError(_UNSAVED)
            self.dispatcher.remind(alert)
            log.info("alert %s unshelved by %s", alert_id_, by or "-")
            return alert, before.ended(self.wall())

    def known(self, alert_id_: str) -> tuple[Episode, bool]:
        """An alert's episode by id, open or resolved a while ago; True while it fires.

        Raises `CommandError` for a pending alert (nobody was told of it) or an id that is
        neither open nor among the resolved alerts kept (`alerts.state.KEEP_RESOLVED`).
        """
        with self.lock:
            for ep in self.episodes.values():
                if ep.alert.id == alert_id_:
                    if ep.alert.state is State.PENDING:
                        raise CommandError(
                            f"alert {alert_id_} is pending, not firing: nobody was told of it"
                        )
                    return ep, ep.alert.state is State.FIRING
            data = self._pending.resolved.get(alert_id_) or self.state.resolved(alert_id_)
            if data is None:
                kept = format_duration(KEEP_RESOLVED_SECONDS)
                raise CommandError(
                    f"no alert with id {alert_id_!r}: none is open, and none resolved "
                    f"in the last {kept} has it"
                )
            return Episode.from_state(data), False

    def save_label(self, label: Label) -> None:
        """Save a verdict on an alert now (`CommandError` when it cannot be saved)."""
        with self.lock:
            self._pending.labels.append(label)
            if not self._save_and_tell():
                self._pending.labels.remove(label)
                raise CommandError(_UNSAVED)

    def resolve_now(self, alert_id_: str, ts: int, note: str) -> Alert:
        """Resolve a firing alert at event time `ts`, by command; its message ends with `note`.

        The resolution goes out as any other does, to the receivers that heard it fire; a
        save that fails is retried with the next batch's, as for an alert a rule resolves.
        """
        with self.lock:
            key, ep = self._firing(alert_id_)
            alert = ep.alert
            alert.state = State.RESOLVED
            alert.resolved_at = ts
            alert.message = f"{alert.message}; {note}" if alert.message else note
            self._transition(key[0], key, ep, State.RESOLVED, ts)
            self._save_and_tell()
            self._refresh_health(ts)
            self.broadcast.publish()
            return alert

    def _firing(self, alert_id_: str) -> tuple[EpisodeKey, Episode]:
        """The episode of a firing alert, by id (`CommandError` for any other)."""
        for key, ep in self.episodes.items():
            if ep.alert.id == alert_id_:
                if ep.alert.state is not State.FIRING:
                    raise CommandError(f"alert {alert_id_} is {ep.alert.state}, not firing")
                return key, ep
        raise CommandError(f"no open alert with id {alert_id_!r} (it may have resolved)")

    def open_alerts(self) -> list[Alert]:
        """Alerts pending or firing now."""
        with self.lock:
            return [ep.alert for ep in self.episodes.values()]

    def close(self) -> None:
        """Save what is unsaved and close the state file."""
        with self.lock:
            self._save(force=True)
            self.state.close()

    # ---- per reading ----

    def _observe(self, obs: Observation) -> None:
        ts = obs.ts
        key = (obs.site, obs.asset)
        a = self.assets.get(key)
        if a is None:
            a = TrackedAsset(obs.site, obs.asset, obs.kind, ts)
            a.scope(self.rules)
            self.assets[key] = a
            self._health_dirty[key] = ts
        elif ts <= a.last_ts:
            return  # redelivered or late: its time has been judged already
        elif obs.kind is not None and obs.kind != a.kind:
            a.kind = obs.kind
            a.scope(self.rules)
            self._health_dirty[key] = ts
        # Groups due before this reading are flushed first, at their due time: notifications
        # come out the same however the stream was cut into batches (a replay, a backlog).
        if self.dispatcher.due < ts:
            self._catch_up(ts, inclusive=False)
        a.last_ts = ts
        a.score = obs.score
        a.metrics = obs.metrics
        self._seen.add(key)
        clock = self.clock
        if ts > clock.newest:
            clock.newest = ts
        a.heard = clock.newest
        if ts - self._deadman_at >= _DEADMAN_EVERY_NS and ts == clock.newest:
            # Inside the batch too: a long batch (a replay) keeps the original timing.
            self._deadman_at = ts
            self._check_deadman(ts)
        if a.silent:
            self._back_online(a, ts)
        if obs.site in self._sites_down:
            self._site_back(obs.site, ts)
        opened = a.open
        if obs.anomalous or opened:
            for rule in a.anomaly:
                active = rule.active(obs)
                if not active and rule.name not in opened:
                    continue
                episode = self.episodes.get((rule.name, a.site, a.asset))
                score = obs.score if obs.score is not None else 0.0
                clear = not active and score < rule.resolve_below  # rule.clears(obs), inline
                self._step(
                    rule, a, episode, active, clear, ts, score, obs.top_metric, rule.for_readings
                )
        metrics = obs.metrics
        for limit, metric, compare, threshold in a.limits:
            value = metrics.get(metric)
            if value is None:
                continue
            hit = compare(value, threshold)
            if not hit and limit.name not in opened:
                continue
            episode = self.episodes.get((limit.name, a.site, a.asset))
            self._step(limit, a, episode, hit, not hit, ts, value, metric, 1)

    def _step(
        self,
        rule: AnomalyRule | LimitRule,
        a: TrackedAsset,
        episode: Episode | None,
        active: bool,
        clear: bool,
        ts: int,
        value: float,
        top_metric: str | None,
        hits_needed: int,
    ) -> None:
        ekey = (rule.name, a.site, a.asset)

        def start() -> Alert:
            return _new_alert(rule, a.site, a.asset, a.kind, State.PENDING, ts, value, top_metric)

        new, state = advance(
            episode,
            active=active,
            ts=ts,
            hits_needed=hits_needed,
            hold_ns=rule.hold_ns,
            resolve_after=rule.resolve_after,
            start=start,
            clear=clear,
            keep_ns=rule.keep_ns,
            # A flapping alert stays, one alert, until its condition has been quiet a while.
            quiet_ns=rule.quiet_ns if episode is not None and episode.alert.flapping else 0,
        )
        if new is None:
            if episode is not None:  # a pending episode ended; it was never saved
                del self.episodes[ekey]
                a.open.discard(rule.name)
            return
        alert = new.alert
        if active:
            alert.value = value
            alert.top_metric = top_metric
        if state is None:
            return
        self.episodes[ekey] = new
        if state is State.FIRING:
            self._fired(ekey, alert, ts, rule.flapping)
        alert.message = self._render(rule, a, alert, ts - new.since)
        self._transition(rule.name, ekey, new, state, ts)

    def _fired(self, ekey: FlapKey, alert: Alert, ts: int, policy: Flapping | None) -> None:
        """Count a firing for flap damping and chattering; mark the alert if it is flapping."""
        verdict = self.flaps.fired(ekey, ts, policy)
        self._pending.flaps[ekey] = self.flaps.history[ekey]
        if verdict.chattering:
            self.metrics.chattering.labels(ekey[0]).inc()
        if verdict.flapping:
            alert.flapping = True
            log.info("alert %s (%s on %s/%s) is flapping", alert.id, *ekey)

    def _describe(self, alert: Alert, now: int) -> None:
        """Bring a firing alert's message (and a deadman's value) up to `now` before it goes."""
        rule = self._rules_by_name.get(alert.rule)
        ep = self.episodes.get(alert.key)
        a = self.assets.get((alert.site, alert.asset))
        if rule is None or ep is None or ep.alert is not alert or a is None:
            return  # a site-wide alert keeps its message
        held = now - ep.since
        if isinstance(rule, DeadmanRule):
            held = now - a.heard
            alert.value = held / _NS
        alert.message = self._render(rule, a, alert, held)

    def _render(self, rule: AnyRule, a: TrackedAsset, alert: Alert, held_ns: int) -> str:
        message = rule.render(self._values(rule, a, alert, held_ns))
        if alert.flapping and not isinstance(rule, DeadmanRule) and rule.flapping is not None:
            message += note(rule.flapping)
        return message

    def _values(
        self, rule: AnyRule, a: TrackedAsset, alert: Alert, held_ns: int
    ) -> dict[str, object]:
        values: dict[str, object] = {
            "site": a.site,
            "asset": a.asset,
            "kind": a.kind,
            "value": alert.value,
            "top_metric": alert.top_metric,
            "duration": format_duration(held_ns / _NS),
        }
        if isinstance(rule, LimitRule):
            values.update(metric=rule.metric, op=rule.op, threshold=rule.value)
        return values

    def _transition(self, rule: str, ekey: EpisodeKey, ep: Episode, state: State, ts: int) -> None:
        alert = ep.alert
        self.metrics.transitions.labels(rule, state.value).inc()
        tracked = self.assets.get((alert.site, alert.asset))
        if tracked is not None:
            if state is State.RESOLVED:
                tracked.open.discard(rule)
            else:
                tracked.open.add(rule)
        if state is State.PENDING:
            # Not saved: a restart only starts the count again; firing alerts are saved.
            return
        self._transitions += 1
        severity = self.metrics.firing.labels(alert.severity.value)
        if state is State.FIRING:
            severity.inc()
            self._pending.episodes[ekey] = ep.to_state()
        else:
            severity.dec()
            del self.episodes[ekey]
            self._pending.episodes[ekey] = None
            self._pending.resolved[alert.id] = ep.to_state()  # feedback may name it later
            if alert.id in self.shelves:
                # One-shot shelving (ISA-18.2): the shelf ends with the alert it held.
                self.shelves.put(alert.id, None)
                self._pending.shelves[alert.id] = None
                log.info("alert %s resolved: its shelf ends", alert.id)
        self._points.append(
            Point(
                "alert",
                {
                    "site": alert.site,
                    "asset": alert.asset,
                    "rule": rule,
                    "severity": alert.severity,
                },
                {
                    "state": state.value,
                    "value": alert.value,
                    "message": alert.message,
                    "id": alert.id,
                    "flapping": alert.flapping,
                },
                ts,
            )
        )
        self.dispatcher.insert(alert, ts)
        self._mark(alert, ts)

    def _mark(self, alert: Alert, ts: int) -> None:
        """The health of the alert's asset (of each asset of its site, if site-wide) may change."""
        if alert.asset == SITE_WIDE:
            self._health_dirty.update({k: ts for k in self.assets if k[0] == alert.site})
        else:
            self._health_dirty[(alert.site, alert.asset)] = ts

    # ---- deadman ----

    def _check_deadman(self, now: int) -> None:
        for rule, a, ts in list(gone_silent(self.assets.values(), now)):
            alert = _new_alert(rule, a.site, a.asset, a.kind, State.FIRING, ts, rule.for_, None)
            alert.message = rule.render(self._values(rule, a, alert, int(rule.for_ * _NS)))
            a.silent.add(rule.name)
            self._open(rule.name, alert, ts)
        for rule, site, ts in list(sites_down(self.assets.values())):
            if (rule.name, site, SITE_WIDE) not in self.episodes:
                alert = _new_alert(rule, site, SITE_WIDE, None, State.FIRING, ts, rule.for_, None)
                held = format_duration(rule.for_)
                alert.message = rule.site_message({"site": site, "duration": held})
                self._sites_down.setdefault(site, set()).add(rule.name)
                self._open(rule.name, alert, ts)

    def _open(self, rule: str, alert: Alert, ts: int) -> None:
        """A deadman alert fires at once: its waiting was the silence itself."""
        ekey = (rule, alert.site, alert.asset)
        ep = Episode(alert, since=ts, seen=ts)
        self.episodes[ekey] = ep
        self._fired(ekey, alert, ts, None)  # chattering only: deadman alerts are not damped
        self._transition(rule, ekey, ep, State.FIRING, ts)

    def _back_online(self, a: TrackedAsset, ts: int) -> None:
        for name in sorted(a.silent):
            self._resolve_silence((name, a.site, a.asset), ts)
        a.silent.clear()

    def _site_back(self, site: str, ts: int) -> None:
        """Any asset of an offline site reports: the site is back."""
        for name in sorted(self._sites_down.pop(site, ())):
            self._resolve_silence((name, site, SITE_WIDE), ts)

    def _resolve_silence(self, ekey: EpisodeKey, ts: int) -> None:
        ep = self.episodes.get(ekey)
        if ep is not None and ep.alert.state is State.FIRING:
            ep.alert.state = State.RESOLVED
            ep.alert.resolved_at = ts
            self._transition(ekey[0], ekey, ep, State.RESOLVED, ts)

    # ---- after each batch or tick ----

    def _settle(self) -> list[Point]:
        now = self.clock.now()
        if now - self._deadman_at >= _DEADMAN_EVERY_NS:
            self._deadman_at = now
            self._check_deadman(now)
        active = self.silences.active_ids()
        if active != self._silence_ids:
            self._silence_ids = active
            self._health_dirty.update(dict.fromkeys(self.assets, now))
        if due := self.shelves.due(self.wall()):
            self._shelves_over(due, now)
        self._catch_up(self.clock.newest, inclusive=True)
        if self.dispatcher.due <= now:
            # Time the silent fleet's clock took from the wall clock: one flush, not one per
            # interval (silences are wall-clock, so past flushes cannot be judged now).
            self._flush(now)
        self._refresh_health(now)
        census = (self._transitions, len(self.shelves))
        if census != self._census[:2] or now - self._census[2] >= _CENSUS_EVERY_NS:
            self._census = (*census, now)  # transitions, shelves and time change the gauges
            self.metrics.census((ep.alert for ep in self.episodes.values()), census[1], now)
        points, self._points = self._points, []
        return points

    def _shelves_over(self, due: list[Shelf], now: int) -> None:
        """Shelves whose time is up: end them; alerts still firing are announced again."""
        live = {ep.alert.id: ep.alert for ep in self.episodes.values()}
        for shelf in due:
            self.shelves.put(shelf.alert_id, None)
            self._pending.shelves[shelf.alert_id] = None
            alert = live.get(shelf.alert_id)
            if alert is not None:
                self.dispatcher.remind(alert)
                self._mark(alert, now)
            log.info("the shelf of alert %s is over (%s)", shelf.alert_id, shelf.note())

    def _catch_up(self, until: int, *, inclusive: bool) -> None:
        """Flush every group due before `until` (or at it), each at its own due time."""
        dispatcher = self.dispatcher
        while dispatcher.due < until or (inclusive and dispatcher.due == until):
            self._flush(dispatcher.due)

    def _flush(self, now: int) -> None:
        if self._inhibitor[0] != self._transitions:
            # Only a firing or resolving alert changes what inhibits what.
            alerts = (ep.alert for ep in self.episodes.values())
            self._inhibitor = (self._transitions, Inhibitor.of(alerts))
        inhibitor = self._inhibitor[1]
        stages: list[Stage] = [
            MuteStage(inhibitor, "inhibited", self.metrics),
            MuteStage(self.silences, "silenced", self.metrics),
            self._shelve_stage,
        ]
        self._pending.notifications.extend(self.dispatcher.flush(now, stages))

    def _refresh_health(self, now: int) -> None:
        changed: list[AssetHealth] = []
        reranked = False
        for key, at in self._health_dirty.items():
            a = self.assets.get(key)
            if a is None:
                continue
            open_alerts = [self.episodes[(name, a.site, a.asset)].alert for name in a.open]
            maintenance = self.silences.maintenance(a.labels())
            h = examine(self.health.get(key), a, open_alerts, maintenance, at, self.shelves)
            if h is None:
                continue
            before = self.health.get(key)
            reranked = reranked or (
                before is None or (before.status, before.kind) != (h.status, h.kind)
            )
            self.health[key] = h
            changed.append(h)
            # The health map's history, for dashboards: one record per change.
            self._health_points.append(
                Point(
                    "health",
                    {"site": h.site, "asset": h.asset},
                    {"status": h.status, "score": h.score or 0.0, "reason": h.reason},
                    h.since,
                )
            )
            self._pending.health[key] = h.to_state()
            self.metrics.health_changes.labels(h.status).inc()
        self._health_dirty.clear()
        advice: dict[AssetKey, dict[str, Any] | None] = {}
        # A status change moves candidates in or out; scores and loads drift slowly, so the
        # ranking is looked at again only every few seconds of event time while advice stands.
        drifted = bool(self.advice) and now - self._advice_at >= _ADVICE_EVERY_NS
        if (reranked or drifted) and self.reroute.enabled:
            self._advice_at = now
            published = {k: reroute.identity(v) for k, v in self.advice.items()}
            if self._ranking is None or now - self._ranked_at >= _RANK_EVERY_NS:
                # One sort of the fleet every few seconds at most: advice for an asset that
                # fails now goes out now, walking a ranking a few seconds old (candidates
                # that failed since are skipped).
                self._ranked_at = now
                self._ranking = reroute.rank(self.health.values(), self._loads(), self._score)
            advice = reroute.refresh(
                self.health, published, self._ranking, self.reroute.max_candidates, self._score
            )
            for key, payload in advice.items():
                if payload is None:
                    self.advice.pop(key, None)
                else:
                    self.advice[key] = payload
            self._pending.kv["advice"] = list(self.advice.values())
        self.broadcast.stage(changed, advice)

    def _save_and_tell(self) -> bool:
        """Save, then publish the health and advice and wake the couriers; False if unsaved."""
        queued = bool(self._pending.notifications)
        if not self._save():
            return False  # published with the next save that succeeds
        self.broadcast.publish()
        if queued and self.on_queued is not None:
            self.on_queued()
        return True

    def _score(self, key: AssetKey) -> float | None:
        a = self.assets.get(key)
        return a.score if a is not None else None

    def _loads(self) -> dict[AssetKey, float]:
        names = self.reroute.load_metrics
        return {key: load for key, a in self.assets.items() if (load := a.load(names)) is not None}

    def _shelf_changed(self, alert: Alert, shelf: dict[str, Any] | None) -> bool:
        """Save a shelf (None: its end) and publish the asset's health; False if unsaved."""
        self._pending.shelves[alert.id] = shelf
        if not self._save_and_tell():
            del self._pending.shelves[alert.id]
            return False
        now = self.clock.now()
        self._mark(alert, now)
        self._refresh_health(now)
        self.broadcast.publish()
        return True

    def _silence_changed(self, silence: Silence) -> bool:
        self._pending.silences.append(silence.to_state())
        if not self._save_and_tell():
            self._pending.silences.pop()
            return False
        self._silence_ids = self.silences.active_ids()
        now = self.clock.now()
        self._health_dirty.update(dict.fromkeys(self.assets, now))
        self._refresh_health(now)
        self.broadcast.publish()
        return True

    # ---- saving and publishing ----

    def _save(self, *, force: bool = False) -> bool:
        """Commit what must survive a crash now; the rest at most once a second.

        Alerts that fire, resolve or are acked, silences, and notifications with the
        dispatcher's log are committed with the batch that caused them (before its acks).
        Last-reading times, the clock, the health map and advice follow within a second:
        after a crash they are recomputed from the readings that come again. False when the
        commit failed (it is retried with the next one).
        """
        pending = self._pending
        wall = self.wall()
        if self.dispatcher.dirty:
            pending.groups.update(self.dispatcher.drain())
        urgent = pending.urgent
        lazy = force or wall - self._saved_at >= _SAVE_LAZY_EVERY
        if not (urgent or lazy):
            return True
        if lazy:
            for key in self._seen:
                a = self.assets[key]
                pending.assets[key] = (a.kind, a.last_ts, a.heard)
            self._seen = set()
            pending.kv["clock"] = {"newest": self.clock.newest}
        try:
            self.state.save(pending, wall)
        except StoreError as exc:
            self._log.error("save", "saving alert state failed, will retry: %s", exc)
            return False
        self._pending = Changes()
        if lazy:
            self._saved_at = wall
        return True

    # ---- restart ----

    def _restore_silence(self, ekey: EpisodeKey) -> None:
        name, site, asset = ekey
        if asset == SITE_WIDE:
            self._sites_down.setdefault(site, set()).add(name)
        elif (a := self.assets.get((site, asset))) is not None:
            a.silent.add(name)

    def _restore(self) -> None:
        snap = self.state.load()
        for (site, asset), (kind, last_ts, heard) in snap.assets.items():
            a = TrackedAsset(site, asset, kind, last_ts, heard)
            a.scope(self.rules)
            self.assets[(site, asset)] = a
        for ekey, data in snap.episodes.items():
            ep = Episode.from_state(data)
            self.episodes[ekey] = ep
            if (tracked := self.assets.get((ekey[1], ekey[2]))) is not None:
                tracked.open.add(ekey[0])
            if ep.alert.state is State.FIRING:
                self.metrics.firing.labels(ep.alert.severity.value).inc()
                if ep.alert.extra.get("type") == "deadman":
                    self._restore_silence(ekey)
        for data in snap.silences:
            self.silences.add(Silence.from_state(data))
        self._silence_ids = self.silences.active_ids()
        firing = {ep.alert.id for ep in self.episodes.values() if ep.alert.state is State.FIRING}
        for alert_id_ in self.shelves.restore(snap.shelves, firing):
            self._pending.shelves[alert_id_] = None
        self.flaps = FlapTracker(snap.flaps)
        policies = (r.flapping for r in self.rules if not isinstance(r, DeadmanRule))
        newest = snap.kv.get("clock", {}).get("newest", 0)
        for flap_key in self.flaps.forget(newest, horizon(policies)):
            self._pending.flaps[flap_key] = None
        for key, data in snap.health.items():
            self.health[key] = AssetHealth.from_state(data)
        for advice in snap.kv.get("advice", ()):
            self.advice[(advice["site"], advice["asset"])] = advice
        self.clock = FleetClock(snap.kv.get("clock", {}).get("newest", 0), wall=self.wall)
        live = {ep.alert.key: ep.alert for ep in self.episodes.values()}
        self.dispatcher.restore(snap.groups, live, self.clock.now())
        # Health may have been left behind by a crash between save and publish, or by a
        # silence that ended while we were down: look at every asset once.
        self._health_dirty.update(dict.fromkeys(self.assets, self.clock.now()))
        # Saved advice may be stale (saved lazily): look at all of it again on the first pass.
        self._advice_at = -_ADVICE_EVERY_NS


def _new_alert(
    rule: AnyRule,
    site: str,
    asset: str,
    kind: str | None,
    state: State,
    ts: int,
    value: float,
    top_metric: str | None,
) -> Alert:
    """The alert of an episode of `rule` on an asset that begins at `ts`."""
    return Alert(
        alert_id(rule.name, site, asset, ts),
        rule.name,
        rule.severity,
        site,
        asset,
        kind,
        state,
        ts,
        value,
        "",
        top_metric,
        extra={"type": rule.type},
    )
