"""The data the console is measured with: the large fleet's health, an asset's six hours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.base import Batch, Point, Reading
from ingest.embedded import EmbeddedStore

#: The large fleet of issue 13's goals.
SITES = 50
ASSETS_PER_SITE = 40
#: The asset page's window: 6 hours at one reading a second.
HOURS = 6
_NS = 1_000_000_000
#: Rows per transaction, as the pipeline flushes a busy batch.
_BATCH = 1000
_STATUSES = ("ok", "ok", "ok", "ok", "warning", "critical", "offline", "maintenance")
_KINDS = ("cnc-mill", "oven", "conveyor", "press")
METRICS = ("spindle_temp_c", "vibration_rms", "current_a", "rpm")


def health(site: int, asset: int, status: str | None = None) -> dict[str, Any]:
    """The health message the pipeline publishes for asset `asset` of site `site`."""
    status = status or _STATUSES[(site * ASSETS_PER_SITE + asset) % len(_STATUSES)]
    failing = status in ("warning", "critical")
    return {
        "site": f"site-{site:02d}",
        "asset": f"asset-{asset:02d}",
        "kind": _KINDS[asset % len(_KINDS)],
        "status": status,
        "score": 0.9 if failing else 0.1,
        "since": "2026-01-01T00:00:00.000Z",
        "reason": "spindle_temp_c above its normal range" if failing else "",
        "alerts": (
            [{"id": f"{site:02d}{asset:02d}", "rule": "anomaly", "severity": status}]
            if failing
            else []
        ),
    }


def large_fleet() -> list[dict[str, Any]]:
    """Every asset's health message: 2,000 assets at 50 sites."""
    return [health(s, a) for s in range(SITES) for a in range(ASSETS_PER_SITE)]


def write_asset_history(data_dir: Path, site: str, asset: str, end_ns: int) -> int:
    """Six hours of 1 Hz readings, scores and two alert episodes ending at `end_ns`; rows."""
    store = EmbeddedStore(data_dir / "meshwatch.db")
    seconds = HOURS * 3600
    start = end_ns - seconds * _NS
    try:
        for first in range(0, seconds, _BATCH):
            batch = Batch()
            for n in range(first, min(first + _BATCH, seconds)):
                ts = start + n * _NS
                wave = (n % 600) / 600
                metrics = {m: 50.0 + 10 * wave + i for i, m in enumerate(METRICS)}
                batch.readings.append(Reading(site, asset, "cnc-mill", ts, metrics))
                tags = {"site": site, "asset": asset, "detector": "default"}
                fields = {"score": wave, "anomalous": wave > 0.5, "warming_up": False}
                batch.points.append(Point("anomaly", tags, fields, ts))
            store.write(batch)
        alerts = Batch()
        for k, (fired, resolved) in enumerate(((3600, 4200), (15000, 15600))):
            tags = {"site": site, "asset": asset, "rule": "anomaly", "severity": "critical"}
            for state, at in (("firing", fired), ("resolved", resolved)):
                record = {"state": state, "message": "too hot", "id": f"e{k}"}
                alerts.points.append(Point("alert", tags, record, start + at * _NS))
        store.write(alerts)
    finally:
        store.close()
    return seconds * 2 + 4
