"""What the alert engine takes back at start-up: what it saved, as it was.

Open episodes and their flap history, silences, shelves, the dispatcher's groups and what
each receiver was told, the fleet clock, the health map and advice, from ``alerts.db``
(docs/design.md §9.11). Where a cluster's instances share assets' alert state
(`alerts.assetstate`), the file gives back only the instance's own part, and the assets this
instance held when it stopped come from the shared store.

A firing alert of a rule the config no longer has resolves at start-up: nothing could
resolve it later (an upgrade from the two default anomaly rules to the one that escalates
leaves an ``anomaly_severe`` alert so), and whoever heard it fire hears it end.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from alerts.assetstate import instance_wide
from alerts.base import State
from alerts.clock import FleetClock
from alerts.fleet import TrackedAsset
from alerts.silences import Silence

if TYPE_CHECKING:  # the engine calls this from its constructor
    from alerts.engine import AlertEngine

log = logging.getLogger(__name__)


def restore(engine: AlertEngine) -> None:
    """Fill a new engine's rooms from its saved state."""
    snap = engine.saver.state.load()
    if engine.saver.shared is not None:  # the assets' state is in the shared store
        snap = instance_wide(snap)
    for (site, asset), (kind, last_ts, heard) in snap.assets.items():
        a = TrackedAsset(site, asset, kind, last_ts, heard)
        a.scope(engine.rules)
        engine.assets[(site, asset)] = a
    newest = snap.kv.get("clock", {}).get("newest", 0)
    engine.episodes.restore(snap.episodes, snap.flaps, newest)
    engine.clock = FleetClock(newest, wall=engine.wall)
    now = engine.clock.now()
    live = {alert.key: alert for alert in engine.episodes.alerts()}
    engine.dispatcher.restore(snap.groups, live, now)
    engine.handover.adopt_held(newest)
    configured = {rule.name for rule in engine.rules}
    for ekey in [k for k in engine.episodes.open if k[0] not in configured]:
        if (alert := engine.episodes.resolve(ekey, now)) is not None:
            log.warning("alert %s of rule %s, no longer configured, resolves", alert.id, ekey[0])
    firing: set[str] = set()
    for ekey, ep in engine.episodes.open.items():
        if ep.alert.state is State.FIRING:
            firing.add(ep.alert.id)
            if ep.alert.extra.get("type") == "deadman":
                engine.deadman.restore(ekey, engine.assets)
    for data in snap.silences:
        engine.silences.add(Silence.from_state(data))
    for alert_id in engine.shelves.restore(snap.shelves, firing):
        engine.saver.changes.shelves[alert_id] = None
    engine.health.silence_ids = engine.muting(now)
    advice = snap.kv.get("advice", ())
    engine.health.restore(snap.health, advice, engine.assets, now)
