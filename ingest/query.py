"""Reading the store back: the rows of a measurement in a time range, whichever store it is.

The pipeline writes docs/design.md §5's measurements to the embedded store or to InfluxDB;
alert history (`alerts.history`) and the web console read them back through a `StoreReader`,
so neither knows which store is behind it. `ingest.embeddedreader` reads the SQLite file,
`ingest.influxreader` asks InfluxDB in Flux. A chart asks for `StoreReader.extremes`: the
store reduces hours of points to the few hundred its pixels can show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.base import FieldValue
from ingest.settings import InfluxSettings


@dataclass(frozen=True, slots=True)
class Row:
    """One point of a measurement as stored: its tags (a missing tag is ``''``), fields, time.

    Parameters
    ----------
    measurement
        The measurement (``alert``, ``telemetry``...).
    tags
        Every tag of the measurement (docs/design.md §5).
    fields
        The fields written at this time (merged, when written more than once).
    ts
        Nanoseconds since the Unix epoch.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: int


@dataclass(frozen=True, slots=True)
class Extremes:
    """The lowest and highest value of one numeric field within one time bucket.

    Min and max per bucket is how a chart draws more points than it has pixels without
    losing a spike shorter than a bucket (InfluxDB's ``aggregateWindow``, Grafana).

    Parameters
    ----------
    field
        The field's name (a metric of ``telemetry``, the ``score`` of ``anomaly``...).
    ts
        The bucket's start, in nanoseconds since the Unix epoch.
    low, high
        The field's lowest and highest value in the bucket.
    """

    field: str
    ts: int
    low: float
    high: float


def bucket_width(start: int, stop: int, buckets: int) -> int:
    """The width in ns of time buckets from `start` that cut ``[start, stop)`` into `buckets`.

    The smallest width for which the bucket of ``stop - 1`` is still the last one, so a
    reader that numbers buckets ``(ts - start) // width`` returns at most `buckets` of them.

    Examples
    --------
    >>> bucket_width(0, 100, 10), bucket_width(0, 101, 10), bucket_width(0, 3, 10)
    (10, 11, 1)
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    return max((stop - start - 1) // buckets + 1, 1)


@dataclass(frozen=True, slots=True)
class Buckets:
    """What a chart asks the store for: `count` time buckets over ``[start, stop)``.

    Points of `measurement` whose tags equal `tags` count, except where the boolean field
    `unless` is true (it needs `field`: the anomaly score is not drawn while
    ``warming_up``); `field` alone limits the answer to that field.

    Examples
    --------
    >>> Buckets("telemetry", 0, 101, 10, tags={"asset": "a1"}).width
    11
    """

    measurement: str
    start: int
    stop: int
    count: int
    tags: Mapping[str, str] | None = None
    field: str | None = None
    unless: str | None = None

    @property
    def width(self) -> int:
        """Each bucket's width in ns (`bucket_width`)."""
        return bucket_width(self.start, self.stop, self.count)


class StoreReader(Protocol):
    """Reads points back from the store the pipeline writes; raises `StoreReadError`."""

    def rows(
        self,
        measurement: str,
        *,
        start: int,
        stop: int | None = None,
        tags: Mapping[str, str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Row]:
        """Points with ``start <= ts < stop`` whose tags equal `tags`, by time (``limit`` first)."""
        ...

    def extremes(self, buckets: Buckets) -> list[Extremes]:
        """Each numeric field's (or only the asked field's) `Extremes` in the `Buckets`.

        Buckets are `Buckets.width` wide from its start; empty ones are left out. By field,
        then time.
        """
        ...

    def latest(self, measurement: str, tags: Mapping[str, str]) -> int | None:
        """The time of the newest point whose tags equal `tags` (None: there is none)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def open_reader(influx: InfluxSettings, data_dir: Path) -> StoreReader:
    """The reader of the store the pipeline writes: InfluxDB with ``influx.url``, else embedded."""
    # Imported here: influxdb-client costs start-up where the store is embedded.
    if influx.url is not None:
        from ingest.influxreader import InfluxReader

        return InfluxReader(influx)
    from ingest.embeddedreader import EmbeddedReader

    return EmbeddedReader(data_dir / "meshwatch.db")
