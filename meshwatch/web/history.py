"""Reading history from the store the pipeline writes: alerts of the last days, an asset's hours.

`History` is what the pages need; `EmbeddedHistory` reads the embedded store
(``<data_dir>/meshwatch.db``, docs/design.md §5) read-only, and
`meshwatch.web.influxhistory.InfluxHistory` reads InfluxDB through its query API. Both
return the same values: the pages do not know which store is behind them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from meshwatch.errors import MeshwatchError

# Alert history rows shown at most: a page, not an export.
HISTORY_LIMIT = 500
# The anomaly threshold the store records (docs/design.md §5: always 0.5).
THRESHOLD = 0.5
_NS = 1_000_000_000


class HistoryError(MeshwatchError):
    """The store could not be read (a locked or damaged file, an unreachable server)."""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert transition (firing or resolved) as the store keeps it."""

    ts: int
    site: str
    asset: str
    rule: str
    severity: str
    state: str
    message: str
    id: str

    @classmethod
    def of(cls, ts: int, tags: Sequence[object], fields: Mapping[str, object]) -> AlertRecord:
        """From the store: the time, the tags (site, asset, rule, severity), the fields."""
        site, asset, rule, severity = (str(tag) for tag in tags)
        text = {name: str(fields.get(name, "")) for name in ("state", "message", "id")}
        return cls(ts, site, asset, rule, severity, text["state"], text["message"], text["id"])


@dataclass(frozen=True, slots=True)
class Series:
    """One metric's points, oldest first: (time in ns, value)."""

    name: str
    points: list[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class Episode:
    """An alert from firing to resolved (`end` None: still firing at the window's end)."""

    start: int
    end: int | None
    rule: str
    severity: str


@dataclass(slots=True)
class AssetHistory:
    """An asset's last hours: each metric, the score and its threshold, alert episodes."""

    start: int
    end: int
    metrics: list[Series] = field(default_factory=list)
    score: Series = field(default_factory=lambda: Series("score", []))
    threshold: float = THRESHOLD
    episodes: list[Episode] = field(default_factory=list)


class History(Protocol):
    """What the console reads from the store."""

    def alerts(self, days: float) -> list[AlertRecord]:
        """Alert transitions of the last `days`, newest first (at most `HISTORY_LIMIT`)."""
        ...

    def asset(self, site: str, asset: str, hours: float) -> AssetHistory:
        """The asset's last `hours` of data, ending at its latest reading."""
        ...


def episodes(records: list[AlertRecord]) -> list[Episode]:
    """Pair each alert's firing with its resolution (records oldest first).

    Examples
    --------
    >>> r = lambda ts, state: AlertRecord(ts, "s", "a", "hot", "critical", state, "", "1")
    >>> [(e.start, e.end) for e in episodes([r(10, "firing"), r(20, "resolved"), r(30, "firing")])]
    [(10, 20), (30, None)]
    """
    open_: dict[str, AlertRecord] = {}
    found: list[Episode] = []
    for record in records:
        if record.state == "firing":
            open_.setdefault(record.id, record)
        elif record.id in open_:
            first = open_.pop(record.id)
            found.append(Episode(first.ts, record.ts, first.rule, first.severity))
    found.extend(Episode(r.ts, None, r.rule, r.severity) for r in open_.values())
    return sorted(found, key=lambda e: e.start)


class EmbeddedHistory:
    """The embedded store, opened read-only: the console never creates nor writes it.

    Parameters
    ----------
    path
        ``<data_dir>/meshwatch.db``; while it does not exist, history is empty.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def alerts(self, days: float) -> list[AlertRecord]:
        """Alert transitions of the last `days`, newest first."""
        since = time.time_ns() - int(days * 86_400 * _NS)
        rows = self._query(
            "SELECT ts, site, asset, rule, severity, fields FROM alert WHERE ts >= ? "
            "ORDER BY ts DESC LIMIT ?",
            (since, HISTORY_LIMIT),
        )
        return [_record(row) for row in rows]

    def asset(self, site: str, asset: str, hours: float) -> AssetHistory:
        """Telemetry, scores and alert episodes of the asset's last `hours`."""
        latest = self._query(
            "SELECT max(ts) FROM telemetry WHERE site = ? AND asset = ?", (site, asset)
        )
        end = latest[0][0] if latest else None
        if not isinstance(end, int):
            now = time.time_ns()
            return AssetHistory(now - int(hours * 3600 * _NS), now)
        start = end - int(hours * 3600 * _NS)
        history = AssetHistory(start, end)
        window = (site, asset, start)
        metrics: dict[str, list[tuple[int, float]]] = {}
        for ts, fields in self._query(
            "SELECT ts, fields FROM telemetry WHERE site = ? AND asset = ? AND ts >= ? ORDER BY ts",
            window,
        ):
            for name, value in orjson.loads(fields).items():
                if isinstance(value, int | float):
                    metrics.setdefault(name, []).append((ts, float(value)))
        history.metrics = [Series(name, points) for name, points in sorted(metrics.items())]
        scores = []
        for ts, fields in self._query(
            "SELECT ts, fields FROM anomaly WHERE site = ? AND asset = ? AND ts >= ? ORDER BY ts",
            window,
        ):
            doc = orjson.loads(fields)
            if isinstance(doc.get("score"), int | float) and not doc.get("warming_up"):
                scores.append((ts, float(doc["score"])))
        history.score = Series("score", scores)
        records = [
            _record(row)
            for row in self._query(
                "SELECT ts, site, asset, rule, severity, fields FROM alert "
                "WHERE site = ? AND asset = ? ORDER BY ts",
                (site, asset),
            )
        ]
        history.episodes = [e for e in episodes(records) if e.end is None or e.end >= start]
        return history

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the store {self.path}: {exc}") from None
        try:
            return conn.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the pipeline has not created it yet
                return []
            raise HistoryError(f"cannot read the store {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the store {self.path}: {exc}") from None
        finally:
            conn.close()


def _record(row: tuple[Any, ...]) -> AlertRecord:
    ts, *tags, fields = row
    return AlertRecord.of(ts, tags, orjson.loads(fields))
