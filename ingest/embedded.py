"""The embedded store: docs/design.md §5's measurements in one SQLite file, for a bare machine.

Each measurement is a table keyed by its tags and time, like an InfluxDB series: writing the
same series and timestamp again merges the fields (a redelivery leaves the store as it was).
Fields are kept as a JSON object, so readings with any metrics fit one table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import orjson

from ingest.base import Batch, Point, Reading
from ingest.errors import StoreError
from ingest.sqlite import connect, transaction

#: Tag columns of each measurement (docs/design.md §5); a missing tag is stored as ''.
TAGS: dict[str, tuple[str, ...]] = {
    "telemetry": ("site", "asset", "kind"),
    "anomaly": ("site", "asset", "detector"),
    "alert": ("site", "asset", "rule", "severity"),
    "health": ("site", "asset"),
    "alert_action": ("site", "asset", "rule", "action"),
    "notification": ("site", "asset", "rule", "receiver", "state"),
}
#: Measurements read by time range over the whole fleet (dashboards, status, alert history):
#: each gets an index on ``ts`` (the primary key serves ranges of one series only).
TIME_INDEXED = ("telemetry", "alert", "alert_action", "notification")


def _upsert(measurement: str) -> str:
    tags = TAGS[measurement]
    columns = ", ".join((*tags, "ts", "fields"))
    marks = ", ".join("?" * (len(tags) + 2))
    return (
        f"INSERT INTO {measurement} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT DO UPDATE SET fields = json_patch(fields, excluded.fields)"
    )


_UPSERT = {measurement: _upsert(measurement) for measurement in TAGS}


class EmbeddedStore:
    """SQLite store of telemetry, anomaly, alert, health, action and notification facts.

    Parameters
    ----------
    path
        The database file (created with its tables when missing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ingest.base import Reading
    >>> store = EmbeddedStore(pathlib.Path(tempfile.mkdtemp()) / "meshwatch.db")
    >>> r = Reading("s1", "a1", None, 1_000, {"t": 1.5})
    >>> store.write(Batch([r, r]))
    >>> store.count("telemetry")
    1
    >>> store.close()
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        for measurement, tags in TAGS.items():
            tag_columns = ", ".join(f"{tag} TEXT NOT NULL" for tag in tags)
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {measurement} ({tag_columns}, ts INTEGER NOT NULL,"
                f" fields TEXT NOT NULL, PRIMARY KEY ({', '.join(tags)}, ts)) WITHOUT ROWID"
            )
        for measurement in TIME_INDEXED:
            self._conn.execute(f"CREATE INDEX IF NOT EXISTS {measurement}_ts ON {measurement} (ts)")

    def write(self, batch: Batch) -> None:
        """Commit all readings and points of `batch` in one transaction."""
        telemetry = _telemetry_rows(batch.readings)
        points = {m: _point_rows(TAGS[m], run) for m, run in _by_measurement(batch.points).items()}
        with transaction(self._conn, f"embedded store {self.path}") as conn:
            conn.executemany(_UPSERT["telemetry"], telemetry)
            for measurement, rows in points.items():
                conn.executemany(_UPSERT[measurement], rows)

    def count(self, measurement: str) -> int:
        """How many (series, time) rows a measurement holds."""
        (n,) = self._conn.execute(f"SELECT count(*) FROM {_table(measurement)}").fetchone()
        return int(n)

    def rows(self, measurement: str, **tags: str) -> Iterator[dict[str, object]]:
        """Rows of a measurement matching exact tag values, oldest first, fields unpacked."""
        table = _table(measurement)
        unknown = set(tags) - set(TAGS[measurement])
        if unknown:
            raise ValueError(f"{measurement} has no tag {sorted(unknown)[0]!r}")
        where = " AND ".join(f"{tag} = ?" for tag in tags)
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "") + " ORDER BY ts"
        cursor = self._conn.execute(sql, tuple(tags.values()))
        names = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["fields"] = orjson.loads(str(row["fields"]))
            yield row

    def close(self) -> None:
        """Close the database; everything committed stays."""
        self._conn.close()


def _table(measurement: str) -> str:
    if measurement not in TAGS:
        raise ValueError(f"unknown measurement {measurement!r}; known: {', '.join(TAGS)}")
    return measurement


def _by_measurement(points: Iterable[Point]) -> dict[str, list[Point]]:
    """The points by measurement, in the order they came.

    Raises `StoreError` (not retryable) for a measurement without a table.
    """
    by_measurement: dict[str, list[Point]] = {}
    measurement: str | None = None
    run: list[Point] = []
    for p in points:
        if p.measurement != measurement:  # points come in runs of one measurement
            measurement = p.measurement
            if measurement not in TAGS:
                raise StoreError(
                    f"no table for measurement {measurement!r} (known: {', '.join(TAGS)})",
                    retryable=False,
                )
            run = by_measurement.setdefault(measurement, [])
        run.append(p)
    return by_measurement


def _telemetry_rows(readings: Iterable[Reading]) -> list[tuple[object, ...]]:
    """Each reading's row: site, asset, kind ('' when unknown), ``ts``, metrics as JSON."""
    dumps = orjson.dumps
    return [(r.site, r.asset, r.kind or "", r.ts, dumps(r.metrics).decode()) for r in readings]


def _point_rows(tags: tuple[str, ...], points: Iterable[Point]) -> list[tuple[object, ...]]:
    """Each point's row: its `tags` in order ('' when missing), ``ts``, fields as JSON."""
    dumps = orjson.dumps
    blanks = ("",) * len(tags)
    rows: list[tuple[object, ...]] = []
    shared: Mapping[str, str] | None = None
    key: tuple[str, ...] = ()
    for p in points:
        if p.tags is not shared:  # scoring gives a run of an asset's points one tags dict
            shared = p.tags
            key = tuple(map(shared.get, tags, blanks))
        fields = p.fields
        if type(fields) is not dict:  # orjson takes dicts only
            fields = dict(fields)
        rows.append((*key, p.ts, dumps(fields).decode()))
    return rows
