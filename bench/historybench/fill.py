"""A day of the large fleet in the embedded store, written as the pipeline writes it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.base import Batch, FieldValue, Point, Reading
from ingest.embedded import EmbeddedStore

SITES = 50
ASSETS_PER_SITE = 40
HOURS = 24
#: 2026-01-01T00:00:00Z: the simulated day starts here (ns).
T0 = 1_767_225_600_000_000_000
_NS = 1_000_000_000
_MIN = 60 * _NS
#: Rows per transaction, as the pipeline commits a busy batch.
_BATCH = 5000
_KINDS = ("cnc-mill", "3d-printer", "injection-moulder", "air-compressor", "conveyor")
_RULES = (("anomaly", "warning"), ("anomaly_severe", "critical"), ("hot", "critical"))
_RECEIVERS = ("mqtt", "log", "webhook")
_METRICS = ("temp", "vibration_rms", "current_a", "rpm")
#: Shares of the episodes acknowledged, judged and shelved.
_ACKED, _JUDGED, _SHELVED = 0.6, 0.3, 0.05
_SILENCES = 20
#: A still-firing alert nobody acknowledged is repeated this often (the route's default).
_REPEAT_NS = 4 * 3600 * _NS


@dataclass(frozen=True, slots=True)
class Filled:
    """What was written: rows per kind, and the end of the day (ns)."""

    readings: int
    alerts: int
    actions: int
    notifications: int
    end: int


def fill(path: Path, *, episodes: int, reading_interval: int, seed: int = 15) -> Filled:
    """Write the day into a new embedded store at `path`."""
    store = EmbeddedStore(path)
    end = T0 + HOURS * 3600 * _NS
    try:
        readings = _readings(store, reading_interval)
        points = _alert_points(random.Random(seed), episodes, end)
        for first in range(0, len(points), _BATCH):
            store.write(Batch(points=points[first : first + _BATCH]))
    finally:
        store.close()
    count = {m: sum(p.measurement == m for p in points) for m in ("alert", "alert_action")}
    told = len(points) - count["alert"] - count["alert_action"]
    return Filled(readings, count["alert"], count["alert_action"], told, end)


def _asset(site: int, asset: int) -> tuple[str, str, str]:
    return f"site-{site:02d}", f"a{asset:02d}", _KINDS[asset % len(_KINDS)]


def _readings(store: EmbeddedStore, interval: int) -> int:
    """Every asset's readings over the day, one every `interval` seconds; how many."""
    assets = [_asset(s, a) for s in range(SITES) for a in range(ASSETS_PER_SITE)]
    batch = Batch()
    written = 0
    for step in range(0, HOURS * 3600, interval):
        ts = T0 + step * _NS
        wave = (step % 3600) / 3600
        for i, (site, asset, kind) in enumerate(assets):
            metrics = {m: 50.0 + 10 * wave + j + i % 7 for j, m in enumerate(_METRICS)}
            batch.readings.append(Reading(site, asset, kind, ts, metrics))
            if len(batch.readings) >= _BATCH:
                store.write(batch)
                written += len(batch.readings)
                batch = Batch()
    store.write(batch)
    return written + len(batch.readings)


def _alert_points(rng: random.Random, episodes: int, end: int) -> list[Point]:
    """Alert, action and notification records of `episodes` episodes over the day."""
    points: list[Point] = []
    for n in range(episodes):
        site, asset, kind = _asset(rng.randrange(SITES), rng.randrange(ASSETS_PER_SITE))
        rule, severity = rng.choice(_RULES)
        fired = T0 + rng.randrange(HOURS * 3600) * _NS
        resolved: int | None = fired + rng.randint(1, 90) * _MIN
        if resolved is not None and resolved >= end:
            resolved = None
        alert_id = f"{n:016x}"
        tags = {"site": site, "asset": asset, "rule": rule, "severity": severity}
        fields: dict[str, FieldValue] = {"id": alert_id, "value": 0.9, "flapping": False}
        fields["kind"] = kind
        message = f"{asset} at {site} is failing"
        points.append(
            Point("alert", tags, {**fields, "state": "firing", "message": message}, fired)
        )
        if resolved is not None:
            record = {**fields, "state": "resolved", "message": message}
            points.append(Point("alert", tags, record, resolved))
        on = {"site": site, "asset": asset, "rule": rule}
        acked = None
        if rng.random() < _ACKED:
            acked = fired + rng.randint(1, 20) * _MIN
            by: dict[str, FieldValue] = {
                "id": alert_id,
                "by": f"tech-{rng.randrange(30)}",
                "comment": "on it",
            }
            points.append(Point("alert_action", {**on, "action": "ack"}, by, acked))
        if rng.random() < _JUDGED:
            verdict = "normal" if rng.random() < 1 / 3 else "fault"
            judged: dict[str, FieldValue] = {
                "id": alert_id,
                "by": "lead",
                "comment": "",
                "verdict": verdict,
            }
            at = (resolved or end) + rng.randint(1, 60) * _MIN
            points.append(Point("alert_action", {**on, "action": "feedback"}, judged, at))
        if rng.random() < _SHELVED:
            shelf: dict[str, FieldValue] = {
                "id": alert_id,
                "by": "ana",
                "comment": "",
                "until": fired + 2 * 3600 * _NS,
            }
            points.append(Point("alert_action", {**on, "action": "shelve"}, shelf, fired + _MIN))
        repeats = range(fired + _REPEAT_NS, acked or resolved or end, _REPEAT_NS)
        for receiver in _RECEIVERS:
            told = {**on, "receiver": receiver}
            doc: dict[str, FieldValue] = {
                "id": alert_id,
                "notification": f"{n}-{receiver}",
                "alerts": 1,
            }
            for at in (fired, *repeats):
                points.append(Point("notification", {**told, "state": "firing"}, doc, at))
            if resolved is not None:
                points.append(Point("notification", {**told, "state": "resolved"}, doc, resolved))
    for k in range(_SILENCES):
        site = f"site-{rng.randrange(SITES):02d}"
        added = T0 + rng.randrange(HOURS * 3600) * _NS
        silence: dict[str, FieldValue] = {
            "id": f"s{k:015d}",
            "by": "planner",
            "comment": "planned maintenance",
            "matchers": orjson.dumps([f'site="{site}"']).decode(),
            "starts_at": added,
            "ends_at": added + 2 * 3600 * _NS,
        }
        tags = {"site": "", "asset": "", "rule": "", "action": "silence"}
        points.append(Point("alert_action", tags, silence, added))
    return points
