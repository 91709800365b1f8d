"""The open episodes of the alert rules and their transitions (pending, firing, resolved).

An episode is one rule's alert on one asset, from its first pending reading to its
resolution (`alerts.lifecycle`). `Episodes` holds those open now, advances them with each
reading a rule judges, and makes every transition count: the gauges and counters, the change
to save (`alerts.state.Changes`), the ``alert`` record to store with the batch, the dispatch
(`alerts.dispatch`) and the health map's mark (`alerts.health.map`). A firing alert's change
of level (`alerts.escalation`) counts as much: saved, recorded, dispatched and marked. Pending
episodes are not saved: a restart only starts their count again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from alerts.base import Alert, AssetKey, EpisodeKey, Severity, State
from alerts.dispatch import SHELVED_AT_END, Dispatcher
from alerts.errors import CommandError
from alerts.escalation import climb
from alerts.flapping import Flapping, FlapTracker, horizon
from alerts.fleet import AnyRule, TrackedAsset
from alerts.health.map import HealthMap
from alerts.lifecycle import Episode, advance
from alerts.messages import LevelChange, new_alert, record, render
from alerts.metrics import AlertMetrics
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule
from alerts.saver import Saver
from alerts.shelves import Shelves
from ingest.base import Point

log = logging.getLogger(__name__)

_NS = 1_000_000_000


class Episodes:
    """The episodes open now, by (rule, site, asset), with their flap history.

    Parameters
    ----------
    rules
        The alert rules.
    assets
        The engine's tracked assets (each keeps the names of its open rules).
    metrics
        Counters and gauges.
    saver
        Where changes wait to be saved.
    shelves
        The shelves (a shelf ends with the alert it held).
    dispatcher
        Where firing and resolved alerts go.
    health
        The health map, marked at each transition.
    """

    def __init__(
        self,
        rules: Sequence[AnyRule],
        assets: Mapping[AssetKey, TrackedAsset],
        *,
        metrics: AlertMetrics,
        saver: Saver,
        shelves: Shelves,
        dispatcher: Dispatcher,
        health: HealthMap,
    ) -> None:
        self.open: dict[EpisodeKey, Episode] = {}
        self.flaps = FlapTracker()
        #: Transitions to firing or resolved, and changes of level, so far (what inhibits
        #: what changes only then).
        self.transitions = 0
        self._rules = list(rules)
        self._rules_by_name = {r.name: r for r in self._rules}
        self._assets = assets
        self._metrics = metrics
        self._saver = saver
        self._shelves = shelves
        self._dispatcher = dispatcher
        self._health = health
        self._points: list[Point] = []

    def alerts(self) -> list[Alert]:
        """The alerts of the open episodes (pending or firing)."""
        return [ep.alert for ep in self.open.values()]

    def points(self) -> list[Point]:
        """The ``alert`` records of the transitions since the last call."""
        points, self._points = self._points, []
        return points

    def step(
        self,
        rule: AnomalyRule | LimitRule,
        a: TrackedAsset,
        active: bool,
        clear: bool,
        ts: int,
        value: float,
        top_metric: str | None,
        hits_needed: int,
    ) -> None:
        """Advance `rule`'s episode on `a` by one reading (`active`: its condition holds)."""
        ekey = (rule.name, a.site, a.asset)
        episode = self.open.get(ekey)

        def start() -> Alert:
            return new_alert(rule, a.site, a.asset, a.kind, State.PENDING, ts, value, top_metric)

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
                del self.open[ekey]
                a.open.discard(rule.name)
            return
        alert = new.alert
        if active:
            alert.value = value
            alert.top_metric = top_metric
        if isinstance(rule, AnomalyRule) and rule.escalate is not None:
            self._climb(ekey, new, rule, a, state, active, value, ts)
        if state is None:
            return
        self.open[ekey] = new
        if state is State.FIRING:
            self._fired(ekey, alert, ts, rule.flapping)
        alert.message = render(rule, a, alert, ts - new.since)
        self.transition(ekey, new, state, ts)

    def _climb(
        self,
        ekey: EpisodeKey,
        ep: Episode,
        rule: AnomalyRule,
        a: TrackedAsset,
        state: State | None,
        active: bool,
        score: float,
        ts: int,
    ) -> None:
        """Count a reading of an escalating rule's open episode towards a change of level.

        `state` is the transition the reading caused, if any. An alert that fires with its
        level's condition already held fires at the level (one alert, one notification); one
        firing changes level (`_relevel`); a pending one only counts.
        """
        level = rule.level
        if level is None or state is State.RESOLVED:
            return
        ran = ep.rise > 0
        at_level = climb(ep, level, high=active and score >= level.min_score, score=score, ts=ts)
        if state is State.FIRING:
            if at_level:
                ep.escalated = True
                ep.alert.severity = level.severity
        elif ep.alert.state is State.FIRING:
            if at_level != ep.escalated:
                ep.escalated = at_level
                self._relevel(ekey, ep, rule, a, level.severity if at_level else rule.severity, ts)
            elif ran and ep.rise == 0:
                # A run towards the level ended: saved, so that a restart does not count on
                # from the run's start.
                self._saver.changes.episodes[ekey] = ep.to_state()

    def _relevel(
        self,
        ekey: EpisodeKey,
        ep: Episode,
        rule: AnomalyRule,
        a: TrackedAsset,
        severity: Severity,
        ts: int,
    ) -> None:
        """A firing alert rises to its rule's level or falls back, to `severity`: told once.

        Its id, start and episode stay; its severity, message and the counts change. It is
        saved, recorded (``escalated``, ``deescalated``), counted, dispatched to every
        receiver that heard it and to the routes its new severity takes, and marks its asset.
        """
        alert = ep.alert
        before = alert.severity
        ep.fall = 0
        alert.severity = severity
        alert.message = render(rule, a, alert, ts - ep.since)
        self.transitions += 1
        metrics = self._metrics
        metrics.firing.labels(before.value).dec()
        metrics.firing.labels(alert.severity.value).inc()
        metrics.level_changes.labels(ekey[0], alert.severity.value).inc()
        self._saver.changes.episodes[ekey] = ep.to_state()
        change: LevelChange = "escalated" if severity.rank > before.rank else "deescalated"
        self._points.append(record(alert, ekey[0], change, ts))
        self._dispatcher.relevel(alert, ts)
        self._health.mark_alert(alert, ts, self._assets)
        log.info("alert %s (%s on %s/%s) is %s now", alert.id, *ekey, alert.severity)

    def fire(self, rule: str, alert: Alert, ts: int) -> None:
        """A deadman alert fires at once: its waiting was the silence itself."""
        ekey = (rule, alert.site, alert.asset)
        ep = Episode(alert, since=ts, seen=ts)
        self.open[ekey] = ep
        self._fired(ekey, alert, ts, None)  # chattering only: deadman alerts are not damped
        self.transition(ekey, ep, State.FIRING, ts)

    def resolve(self, ekey: EpisodeKey, ts: int) -> Alert | None:
        """Resolve the episode `ekey` at `ts` if it is firing; return its alert if it was."""
        ep = self.open.get(ekey)
        if ep is None or ep.alert.state is not State.FIRING:
            return None
        ep.alert.state = State.RESOLVED
        ep.alert.resolved_at = ts
        self.transition(ekey, ep, State.RESOLVED, ts)
        return ep.alert

    def firing(self, alert_id: str) -> tuple[EpisodeKey, Episode]:
        """The episode of a firing alert, by id (`CommandError` for any other)."""
        for key, ep in self.open.items():
            if ep.alert.id == alert_id:
                if ep.alert.state is not State.FIRING:
                    raise CommandError(f"alert {alert_id} is {ep.alert.state}, not firing")
                return key, ep
        raise CommandError(f"no open alert with id {alert_id!r} (it may have resolved)")

    def describe(self, alert: Alert, now: int) -> None:
        """Bring a firing alert's message (and a deadman's value) up to `now` before it goes."""
        rule = self._rules_by_name.get(alert.rule)
        ep = self.open.get(alert.key)
        a = self._assets.get((alert.site, alert.asset))
        if rule is None or ep is None or ep.alert is not alert or a is None:
            return  # a site-wide alert keeps its message
        held = now - ep.since
        if isinstance(rule, DeadmanRule):
            held = now - a.heard
            alert.value = held / _NS
        alert.message = render(rule, a, alert, held)

    def transition(self, ekey: EpisodeKey, ep: Episode, state: State, ts: int) -> None:
        """An episode moves to `state` at `ts`: count, save, record and dispatch it."""
        rule = ekey[0]
        alert = ep.alert
        self._metrics.transitions.labels(rule, state.value).inc()
        tracked = self._assets.get((alert.site, alert.asset))
        if tracked is not None:
            if state is State.RESOLVED:
                tracked.open.discard(rule)
            else:
                tracked.open.add(rule)
        if state is State.PENDING:
            # Not saved: a restart only starts the count again; firing alerts are saved.
            return
        self.transitions += 1
        severity = self._metrics.firing.labels(alert.severity.value)
        changes = self._saver.changes
        if state is State.FIRING:
            severity.inc()
            changes.episodes[ekey] = ep.to_state()
        else:
            severity.dec()
            del self.open[ekey]
            changes.episodes[ekey] = None
            if alert.id in self._shelves:
                # One-shot shelving (ISA-18.2): the shelf ends with the alert it held; its
                # resolution, if sent, says it came while shelved.
                alert.extra[SHELVED_AT_END] = True
                self._shelves.put(alert.id, None)
                changes.shelves[alert.id] = None
                log.info("alert %s resolved: its shelf ends", alert.id)
            changes.resolved[alert.id] = ep.to_state()  # feedback may name it later
        self._points.append(record(alert, rule, state, ts))
        self._dispatcher.insert(alert, ts)
        self._health.mark_alert(alert, ts, self._assets)

    def restore(
        self,
        episodes: Mapping[EpisodeKey, dict[str, Any]],
        flaps: Mapping[EpisodeKey, list[int]],
        newest: int,
    ) -> None:
        """Take back the saved episodes and flap history; forget what is past its horizon."""
        for ekey, data in episodes.items():
            ep = Episode.from_state(data)
            self.open[ekey] = ep
            if (tracked := self._assets.get((ekey[1], ekey[2]))) is not None:
                tracked.open.add(ekey[0])
            if ep.alert.state is State.FIRING:
                self._metrics.firing.labels(ep.alert.severity.value).inc()
        self.flaps = FlapTracker(flaps)
        policies = (r.flapping for r in self._rules if not isinstance(r, DeadmanRule))
        for flap_key in self.flaps.forget(newest, horizon(policies)):
            self._saver.changes.flaps[flap_key] = None

    def adopt(
        self,
        key: AssetKey,
        episodes: Mapping[str, Mapping[str, Any]],
        flaps: Mapping[str, list[int]],
    ) -> list[Episode]:
        """Take over an asset's open episodes and flap history from another instance.

        Its episodes go on where they were, a pending one's on-delay too; returns them.
        """
        tracked = self._assets.get(key)
        taken = []
        for rule, data in episodes.items():
            ep = Episode.from_state(data)
            self.open[(rule, *key)] = ep
            if tracked is not None:
                tracked.open.add(rule)
            if ep.alert.state is State.FIRING:
                self._metrics.firing.labels(ep.alert.severity.value).inc()
            taken.append(ep)
        for rule, times in flaps.items():
            self.flaps.history[(rule, *key)] = list(times)
        return taken

    def of(self, key: AssetKey) -> dict[str, Episode]:
        """The asset's open episodes, by rule."""
        tracked = self._assets.get(key)
        names = tracked.open if tracked is not None else ()
        return {rule: ep for rule in names if (ep := self.open.get((rule, *key))) is not None}

    def forget(self, keys: Collection[AssetKey]) -> tuple[list[Alert], list[EpisodeKey]]:
        """Let these assets' episodes and flap history go (another instance has them now).

        Returns the alerts of the open episodes and the keys of the flap histories let go.
        """
        gone = []
        for ekey in [k for k in self.open if (k[1], k[2]) in keys]:
            alert = self.open.pop(ekey).alert
            if alert.state is State.FIRING:
                self._metrics.firing.labels(alert.severity.value).dec()
            gone.append(alert)
        flaps = [k for k in self.flaps.history if (k[1], k[2]) in keys]
        for ekey in flaps:
            del self.flaps.history[ekey]
        return gone, flaps

    def _fired(self, ekey: EpisodeKey, alert: Alert, ts: int, policy: Flapping | None) -> None:
        """Count a firing for flap damping and chattering; mark the alert if it is flapping."""
        verdict = self.flaps.fired(ekey, ts, policy)
        self._saver.changes.flaps[ekey] = self.flaps.history[ekey]
        if verdict.chattering:
            self._metrics.chattering.labels(ekey[0]).inc()
        if verdict.flapping:
            alert.flapping = True
            log.info("alert %s (%s on %s/%s) is flapping", alert.id, *ekey)
