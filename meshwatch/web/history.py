"""What the console reads from the store the pipeline writes: recent alerts, an asset's hours.

`StoreHistory` answers the pages over a `ingest.query.StoreReader` (the embedded store or
InfluxDB, `ingest.query.open_reader`), and rebuilds alert episodes with the pipeline's own
code (`alerts.history.episodes`): the pages do not know which store is behind them. An
asset's series come from the store already reduced to each time bucket's lowest and highest
value (`StoreReader.extremes`, one bucket per pixel column of a chart): six hours at 1 Hz are
21,600 points a metric, for a plot 752 columns wide.
`EmbeddedHistory` is the embedded store's, opened read-only: the console never creates nor
writes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Protocol

from alerts.history.episodes import build
from ingest.embeddedreader import EmbeddedReader
from ingest.errors import StoreReadError
from ingest.query import Buckets, Extremes, Row, StoreReader

# Alert history rows shown at most: a page, not an export.
HISTORY_LIMIT = 500
# The anomaly threshold the store records (docs/design.md §5: always 0.5).
THRESHOLD = 0.5
_NS = 1_000_000_000
#: An asset's chart shows episodes that began up to this long before its window.
_EPISODE_LOOKBACK_NS = 30 * 86_400 * _NS

#: The store could not be read (a locked or damaged file, an unreachable server).
HistoryError = StoreReadError


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
    def of(cls, row: Row) -> AlertRecord:
        """From an ``alert`` row of the store."""
        tags: Mapping[str, str] = row.tags
        text = {name: str(row.fields.get(name, "")) for name in ("state", "message", "id")}
        return cls(
            row.ts,
            tags["site"],
            tags["asset"],
            tags["rule"],
            tags["severity"],
            text["state"],
            text["message"],
            text["id"],
        )


@dataclass(frozen=True, slots=True)
class Series:
    """One metric's points, oldest first: (time in ns, value).

    From the store, each time bucket's lowest then highest value, both at the bucket's start
    (one point when they are equal).
    """

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

    def asset(self, site: str, asset: str, hours: float, buckets: int) -> AssetHistory:
        """The asset's last `hours` of data, ending at its latest reading, in `buckets` slices."""
        ...


class StoreHistory:
    """The console's `History` over a reader of the store.

    Parameters
    ----------
    reader
        The store the pipeline writes.
    """

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader

    def alerts(self, days: float) -> list[AlertRecord]:
        """Alert transitions of the last `days`, newest first."""
        since = time.time_ns() - int(days * 86_400 * _NS)
        rows = self.reader.rows("alert", start=since, newest_first=True, limit=HISTORY_LIMIT)
        return [AlertRecord.of(row) for row in rows]

    def asset(self, site: str, asset: str, hours: float, buckets: int) -> AssetHistory:
        """Telemetry, scores and alert episodes of the asset's last `hours`.

        Each metric and the score as `buckets` slices' lowest and highest values (`Series`);
        scores of a model still warming up are left out, as they judge nothing.
        """
        where = {"site": site, "asset": asset}
        end = self.reader.latest("telemetry", where)
        if end is None:
            now = time.time_ns()
            return AssetHistory(now - int(hours * 3600 * _NS), now)
        start = end - int(hours * 3600 * _NS)
        history = AssetHistory(start, end)
        metrics = self.reader.extremes(Buckets("telemetry", start, end + 1, buckets, where))
        history.metrics = [
            Series(name, _points(extremes))
            for name, extremes in groupby(metrics, key=attrgetter("field"))
        ]
        scores = self.reader.extremes(
            Buckets("anomaly", start, end + 1, buckets, where, "score", "warming_up")
        )
        history.score = Series("score", _points(scores))
        alerts = self.reader.rows("alert", start=start - _EPISODE_LOOKBACK_NS, tags=where)
        history.episodes = [
            Episode(e.fired, e.resolved, e.rule, e.severity)
            for e in build(alerts)
            if e.fired is not None and (e.resolved is None or e.resolved >= start)
        ]
        return history


def _points(extremes: Iterable[Extremes]) -> list[tuple[int, float]]:
    """The points a chart draws of each bucket: its lowest then its highest value.

    Examples
    --------
    >>> _points([Extremes("t", 0, 1.0, 4.0), Extremes("t", 10, 2.0, 2.0)])
    [(0, 1.0), (0, 4.0), (10, 2.0)]
    """
    points = []
    for bucket in extremes:
        points.append((bucket.ts, bucket.low))
        if bucket.high != bucket.low:
            points.append((bucket.ts, bucket.high))
    return points


class EmbeddedHistory(StoreHistory):
    """The console's history of the embedded store (``<data_dir>/meshwatch.db``), read-only.

    Parameters
    ----------
    path
        The store's file; while it does not exist, history is empty.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(EmbeddedReader(path))
        self.path = path
