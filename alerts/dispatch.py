"""From alert changes to notifications: grouping, muting, deduplication and repeats.

Alertmanager's dispatcher, cut to what the fleet needs. Each alert that fires or resolves
joins an aggregation group on every route it matches (`Route.group_labels`). A group is
flushed ``group_wait`` after it was created and then every ``group_interval``; a flush runs
the alerts through the mute stages (inhibition, silences), and for each receiver of the route
sends a notification only when something is new for that receiver: an alert it has not been
told is firing, or one it was told about that has resolved. When nothing is new, the firing
alerts nobody acknowledged are repeated once ``repeat_interval`` has passed since the
receiver last heard of the group. Times are event times (ns), so a replay notifies as the
original stream would have.

An alert that changes level (`alerts.escalation`) is news again: every receiver that heard
it hears it once more, at its new severity, and the routes its new labels take hear it as
new. It stays in the groups it joined until it resolves, so whoever heard it at one level
hears each later change and its resolution (and its repeats, at whatever level it is).

Muting holds back firings and repeats, never the end of what a receiver was told: a
resolution goes to every receiver that heard the alert fire, even when a silence, an
inhibition or a shelf covers it by then, and says so (``"muted": "silenced"``). An alert
that fired and resolved while muted is never sent: nobody heard it fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from alerts.base import SITE_WIDE, Alert, Labels, Muter, Notification, Stage, State
from alerts.metrics import AlertMetrics
from alerts.route import Route

GroupKey = tuple[str, tuple[tuple[str, str], ...]]
_NEVER = 2**63 - 1
AlertKey = tuple[str, str, str]
#: The `Alert.extra` mark of an alert that was shelved when it resolved (its shelf ends then).
SHELVED_AT_END = "shelved_at_end"


@dataclass(slots=True)
class Group:
    """Alerts of one route that share the route's ``group_by`` labels."""

    route: Route
    labels: dict[str, str]
    next_flush: int
    alerts: dict[str, Alert] = field(default_factory=dict)


@dataclass(slots=True)
class Sent:
    """What one receiver was last told about one group: the firing alert ids, and when."""

    firing: set[str]
    at: int


class MuteStage:
    """A `Stage` that drops the alerts a `Muter` (silences, inhibitions) mutes, counting them."""

    def __init__(self, muter: Muter, cause: str, metrics: AlertMetrics | None = None) -> None:
        self.muter = muter
        self.cause = cause
        self._muted = metrics.muted.labels(cause) if metrics is not None else None

    def __call__(self, alerts: list[Alert], now: int) -> list[Alert]:
        """The alerts the muter lets through at event time `now`."""
        kept = [a for a in alerts if not self.muter.mutes(a.labels(), now)]
        if self._muted is not None and len(kept) < len(alerts):
            self._muted.inc(len(alerts) - len(kept))
        return kept


def mute(
    members: list[Alert], stages: Sequence[Stage], now: int
) -> tuple[list[Alert], dict[str, str]]:
    """Run `members` through the mute stages: the audible alerts, and each muted one's cause.

    The cause is the stage's ``cause`` (``inhibited``, ``silenced``, ``shelved``), the first
    stage that held the alert back; an alert whose shelf ended with its resolution keeps
    ``shelved`` (`SHELVED_AT_END`), so its resolution can say so.
    """
    audible = members
    muted: dict[str, str] = {}
    for stage in stages:
        kept = stage(audible, now)
        if len(kept) < len(audible):
            left = {a.id for a in kept}
            muted.update((a.id, stage.cause) for a in audible if a.id not in left)
        audible = kept
    for a in members:
        if a.extra.get(SHELVED_AT_END) and a.id not in muted:
            muted[a.id] = "shelved"
    return audible, muted


class Dispatcher:
    """Aggregation groups and the notification log of every receiver.

    Parameters
    ----------
    root
        The routing tree.
    metrics
        Where queued notifications are counted.
    describe
        Called with each firing alert and the time before it is sent, to bring its message up
        to date (a repeat says how long it has been failing now).
    """

    def __init__(
        self,
        root: Route,
        metrics: AlertMetrics | None = None,
        describe: Callable[[Alert, int], None] | None = None,
    ) -> None:
        self.root = root
        self.metrics = metrics
        self.describe = describe
        self.groups: dict[GroupKey, Group] = {}
        self.sent: dict[tuple[str, GroupKey], Sent] = {}
        #: Groups changed since the last `drain` (saved one row each, not the whole state).
        self.dirty: set[GroupKey] = set()
        #: Event time of the earliest flush (a sentinel far in the future without groups).
        self.due = _NEVER

    def insert(self, alert: Alert, now: int) -> list[GroupKey]:
        """An alert fired or resolved: put it in its groups (a new group waits group_wait).

        Returns the groups it is in.
        """
        labels = alert.labels()
        return [self._join(route, labels, alert, now) for route in self.root.match(labels)]

    def _join(self, route: Route, labels: Labels, alert: Alert, now: int) -> GroupKey:
        """Put `alert` in its group on `route` (named by `labels`); return the group's key."""
        key, shared = _key(route, labels)
        group = self.groups.get(key)
        if group is None:
            group = Group(route, shared or {}, now + int(route.group_wait * 1e9))
            self.groups[key] = group
            self.due = min(self.due, group.next_flush)
        # By id: a new episode that fires before the flush must not hide the old one's
        # resolution from the receivers that were told it fired.
        group.alerts[alert.id] = alert
        self.dirty.add(key)
        return key

    def relevel(self, alert: Alert, now: int) -> None:
        """A firing alert changed severity: tell everyone who heard it, and its new routes.

        The receivers of the groups it is in hear it again at their next flush (within
        ``group_interval``); a route its new labels take and it was not on yet gets it as a
        new alert (after ``group_wait``).
        """
        self.remind(alert)
        on = {group.route.path for group in self.groups.values() if alert.id in group.alerts}
        labels = alert.labels()
        for route in self.root.match(labels):
            if route.path not in on:
                self._join(route, labels, alert, now)

    def remind(self, alert: Alert) -> None:
        """Announce a firing alert again, as if its receivers had never heard of it.

        For an alert that comes back from the shelf still firing (ISA-18.2 re-annunciation).
        It goes out at its groups' next flush, within ``group_interval``: a group with a
        firing alert keeps flushing.
        """
        for key, group in self.groups.items():
            if alert.id not in group.alerts:
                continue
            for receiver in group.route.receivers:
                sent = self.sent.get((receiver, key))
                if sent is not None:
                    sent.firing.discard(alert.id)
            self.dirty.add(key)

    def told(self, alert_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """For each of these firing alerts, the receivers told it fired, and when last."""
        found: dict[str, dict[str, int]] = {}
        for key, group in self.groups.items():
            for alert_id in alert_ids:
                if alert_id not in group.alerts:
                    continue
                told = found.setdefault(alert_id, {})
                for receiver in group.route.receivers:
                    sent = self.sent.get((receiver, key))
                    if sent is not None and alert_id in sent.firing:
                        told[receiver] = max(told.get(receiver, 0), sent.at)
        return found

    def told_changed(self) -> dict[AlertKey, dict[str, int]]:
        """Who was told each firing alert of an asset fired, in the groups changed since `drain`.

        Where assets' state is shared, the next holder of the asset must know.
        """
        keys = {
            alert.id: alert.key
            for key in self.dirty
            if (group := self.groups.get(key)) is not None
            for alert in group.alerts.values()
            if alert.state is State.FIRING and alert.asset != SITE_WIDE
        }
        return {keys[i]: told for i, told in self.told(keys).items()}

    def adopt(self, alert: Alert, told: Mapping[str, int], now: int) -> None:
        """A firing alert another instance dispatched until now, with who it told and when.

        Its receivers that were told are not told again (repeats follow ``repeat_interval``
        from when they last heard), and hear its resolution; the others hear it fire.
        """
        for key in self.insert(alert, now):
            group = self.groups[key]
            for receiver in group.route.receivers:
                if receiver not in told:
                    continue
                sent = self.sent.get((receiver, key))
                if sent is None:
                    self.sent[(receiver, key)] = Sent({alert.id}, told[receiver])
                else:
                    sent.firing.add(alert.id)

    def forget(self, alert_ids: Collection[str]) -> None:
        """Let these firing alerts go: another instance dispatches them from now on.

        Resolutions waiting for a flush stay: this instance owes them to whoever it told.
        """
        for key, group in list(self.groups.items()):
            gone = [i for i in alert_ids if i in group.alerts]
            if not gone:
                continue
            for alert_id in gone:
                del group.alerts[alert_id]
            for receiver in group.route.receivers:
                if (sent := self.sent.get((receiver, key))) is not None:
                    sent.firing.difference_update(gone)
            self.dirty.add(key)
            if not group.alerts:
                del self.groups[key]
                for receiver in group.route.receivers:
                    self.sent.pop((receiver, key), None)
        self.due = min((g.next_flush for g in self.groups.values()), default=_NEVER)

    def flush(self, now: int, stages: Sequence[Stage]) -> list[Notification]:
        """Flush every group that is due at `now`; return the notifications to send."""
        out: list[Notification] = []
        for key, group in list(self.groups.items()):
            if group.next_flush <= now:
                out.extend(self._flush(key, group, now, stages))
        self.due = min((g.next_flush for g in self.groups.values()), default=_NEVER)
        return out

    def _flush(
        self, key: GroupKey, group: Group, now: int, stages: Sequence[Stage]
    ) -> list[Notification]:
        members = list(group.alerts.values())
        member_ids = set(group.alerts)
        audible, muted = mute(members, stages, now)
        route = group.route
        if audible and route.muted_at(now) is not None:
            # The route's planned window (a mute interval, or outside its active ones).
            muted.update((a.id, "time_interval") for a in audible)
            if self.metrics is not None:
                self.metrics.muted.labels("time_interval").inc(len(audible))
            audible = []
        firing = [a for a in audible if a.state is State.FIRING]
        # Every resolution, muted or not: a receiver that heard an alert fire hears it end.
        resolved = [a for a in members if a.state is State.RESOLVED]
        # Firing but muted now: whoever heard them fire still waits for their resolution.
        held = [a.id for a in members if a.state is State.FIRING and a.id in muted]
        out = []
        for receiver in route.receivers:
            sent = self.sent.get((receiver, key))
            told = sent.firing if sent is not None else set()
            new = any(a.id not in told for a in firing)
            gone = [a for a in resolved if a.id in told]
            if new or gone:
                batch = firing + gone
            elif (
                firing
                and sent is not None
                and route.repeat_interval > 0
                and now - sent.at >= route.repeat_interval * 1e9
            ):
                batch = [a for a in firing if a.acked_by is None]
            else:
                batch = []
            if sent is not None:
                # Forget alerts that left the group: their resolution was told or never due.
                sent.firing &= member_ids
            if not batch:
                continue
            if self.describe is not None:
                for a in batch:
                    if a.state is State.FIRING:
                        self.describe(a, now)
            alerts = [a.to_json(muted=muted.get(a.id)) for a in batch]
            out.append(Notification(receiver, group.labels, alerts, _new_id(), now))
            still_told = {i for i in held if i in told}
            self.sent[(receiver, key)] = Sent({a.id for a in firing} | still_told, now)
            if self.metrics is not None:
                self.metrics.notifications.labels(receiver, "queued").inc()
        for a in members:
            if a.state is State.RESOLVED:
                del group.alerts[a.id]
        # What was told must be saved with the notifications; a flush that told nothing only
        # moved its timer, which a restart may lose (the log keeps it from telling twice).
        if out or len(group.alerts) < len(members):
            self.dirty.add(key)
        if group.alerts:
            group.next_flush = now + max(1, int(route.group_interval * 1e9))
        else:
            self.dirty.add(key)
            del self.groups[key]
            for receiver in route.receivers:
                self.sent.pop((receiver, key), None)
        return out

    # ---- persistence ----

    def drain(self) -> dict[str, dict[str, Any] | None]:
        """The changed groups since the last drain, by name: their state, or None if gone."""
        out: dict[str, dict[str, Any] | None] = {}
        for key in self.dirty:
            group = self.groups.get(key)
            name = orjson.dumps([key[0], key[1]]).decode()
            out[name] = None if group is None else self._group_state(key, group)
        self.dirty.clear()
        return out

    def _group_state(self, key: GroupKey, group: Group) -> dict[str, Any]:
        sent = {
            receiver: {"firing": sorted(s.firing), "at": s.at}
            for receiver in group.route.receivers
            if (s := self.sent.get((receiver, key))) is not None
        }
        return {
            "route": key[0],
            "key": [list(p) for p in key[1]],
            "next_flush": group.next_flush,
            "alerts": [a.to_state() for a in group.alerts.values()],
            "sent": sent,
        }

    def restore(
        self, groups: Iterable[Mapping[str, Any]], live: Mapping[AlertKey, Alert], now: int
    ) -> None:
        """Rebuild groups and the log from saved groups; routes follow the current config.

        An alert still open in the engine (`live`) is the same object here, so later changes
        reach its group. An alert goes back into the group it was saved in while that group's
        route still exists (an alert that changed level stays where it was heard); one whose
        route no longer exists is routed afresh and flushed now.
        """
        saved = list(groups)
        routes = {route.path: route for route in self.root.walk()}
        for g in saved:
            route = routes.get(g["route"])
            formed = dict(g["key"])  # the labels the group was formed with
            if route is not None and _key(route, formed)[0] != (g["route"], tuple(formed.items())):
                route = None  # its grouping changed: routed afresh
            for data in g["alerts"]:
                restored = Alert.from_state(data)
                alert = live.get(restored.key)
                if alert is None or alert.id != restored.id:
                    alert = restored
                if route is None:
                    self.insert(alert, now)
                else:
                    self._join(route, formed, alert, now)
        for g in saved:
            key: GroupKey = (g["route"], tuple((k, v) for k, v in g["key"]))
            if key in self.groups:
                self.groups[key].next_flush = g["next_flush"]
            for receiver, s in g["sent"].items():
                self.sent[(receiver, key)] = Sent(set(s["firing"]), s["at"])
        self.due = min((g.next_flush for g in self.groups.values()), default=_NEVER)
        self.dirty.clear()


def _key(route: Route, labels: Labels) -> tuple[GroupKey, dict[str, str] | None]:
    """The key of the group on `route` an alert with `labels` joins, and its shared labels."""
    shared = route.group_labels(labels)
    by = labels if shared is None else shared
    return (route.path, tuple(sorted(by.items()))), shared


def _new_id() -> str:
    return uuid.uuid4().hex
