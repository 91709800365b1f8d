"""Reading the embedded store (``<data_dir>/meshwatch.db``) read-only, for history and the console.

Each query opens the file read-only (``mode=ro``): a reader never creates the store nor
takes the writer's lock, and WAL mode lets it read beside the pipeline's commits. A store
not yet created reads as empty. Time ranges over a whole measurement walk its ``ts`` index;
those naming every tag walk the primary key (docs/design.md §5). `EmbeddedReader.extremes`
reduces in SQL: ``json_each`` unfolds the fields, ``GROUP BY`` field and bucket keeps the
lowest and highest, so Python sees a few thousand rows instead of every point.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ingest.embedded import TAGS
from ingest.errors import StoreReadError
from ingest.query import Buckets, Extremes, Row


class EmbeddedReader:
    """A `StoreReader` of the embedded store.

    Parameters
    ----------
    path
        ``<data_dir>/meshwatch.db``; while it does not exist, every query is empty.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ingest.base import Batch, Reading
    >>> from ingest.embedded import EmbeddedStore
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "meshwatch.db"
    >>> store = EmbeddedStore(path)
    >>> store.write(Batch([Reading("s1", "a1", None, t, {"t": float(t)}) for t in range(4)]))
    >>> reader = EmbeddedReader(path)
    >>> [(r.tags["asset"], r.fields, r.ts) for r in reader.rows("telemetry", start=0, limit=1)]
    [('a1', {'t': 0.0}, 0)]
    >>> reader.extremes(Buckets("telemetry", 0, 4, 2))  # two buckets of two readings
    [Extremes(field='t', ts=0, low=0.0, high=1.0), Extremes(field='t', ts=2, low=2.0, high=3.0)]
    >>> store.close()
    """

    def __init__(self, path: Path) -> None:
        self.path = path

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
        """Points with ``start <= ts < stop`` whose tags equal `tags`, by time."""
        names = _tags_of(measurement, tags or {})
        where = [f"{tag} = ?" for tag in (tags or {})]
        parameters: list[object] = list((tags or {}).values())
        where.append("ts >= ?")
        parameters.append(start)
        if stop is not None:
            where.append("ts < ?")
            parameters.append(stop)
        sql = (
            f"SELECT {', '.join(names)}, ts, fields FROM {measurement} "
            f"WHERE {' AND '.join(where)} ORDER BY ts {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        loads = orjson.loads
        return [
            Row(
                measurement,
                dict(zip(names, values[:-2], strict=True)),
                loads(values[-1]),
                values[-2],
            )
            for values in self._query(sql, tuple(parameters))
        ]

    def extremes(self, buckets: Buckets) -> list[Extremes]:
        """Each numeric field's lowest and highest value per time bucket, by field then time.

        One SQL query (see the class's example): ``json_each`` unfolds the fields, ``GROUP
        BY`` field and bucket keeps the lowest and highest.
        """
        width = buckets.width
        return [
            Extremes(name, buckets.start + bucket * width, float(low), float(high))
            for name, bucket, low, high in self._query(*_extremes_query(buckets))
        ]

    def latest(self, measurement: str, tags: Mapping[str, str]) -> int | None:
        """The time of the newest point whose tags equal `tags`."""
        _tags_of(measurement, tags)
        where = " AND ".join(f"{tag} = ?" for tag in tags) or "1"
        found = self._query(
            f"SELECT max(ts) FROM {measurement} WHERE {where}", tuple(tags.values())
        )
        value = found[0][0] if found else None
        return value if isinstance(value, int) else None

    def close(self) -> None:
        """Nothing to release: each query opens and closes the file."""

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise StoreReadError(f"cannot open the store {self.path}: {exc}") from None
        try:
            return conn.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the pipeline has not created it yet
                return []
            raise StoreReadError(f"cannot read the store {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreReadError(f"cannot read the store {self.path}: {exc}") from None
        finally:
            conn.close()


def _tags_of(measurement: str, tags: Mapping[str, str]) -> tuple[str, ...]:
    """The measurement's tag columns; a `ValueError` for an unknown measurement or tag."""
    if measurement not in TAGS:
        raise ValueError(f"unknown measurement {measurement!r}; known: {', '.join(TAGS)}")
    unknown = set(tags) - set(TAGS[measurement])
    if unknown:
        raise ValueError(f"{measurement} has no tag {sorted(unknown)[0]!r}")
    return TAGS[measurement]


def _extremes_query(buckets: Buckets) -> tuple[str, tuple[object, ...]]:
    """The SQL of `EmbeddedReader.extremes`, and its parameters.

    Examples
    --------
    >>> sql, parameters = _extremes_query(
    ...     Buckets("anomaly", 0, 100, 10, {"asset": "a1"}, "score", "warming_up"))
    >>> sql[sql.index("WHERE") : sql.index("GROUP")]
    "WHERE m.asset = ? AND m.ts >= ? AND m.ts < ? AND f.type IN ('integer', 'real') AND \
f.key = ? AND json_extract(m.fields, ?) IS NOT 1 "
    >>> parameters
    (0, 10, 'a1', 0, 100, 'score', '$."warming_up"')
    """
    measurement, tags = buckets.measurement, buckets.tags or {}
    start, stop = buckets.start, buckets.stop
    _tags_of(measurement, tags)
    where = [f"m.{tag} = ?" for tag in tags]
    where += ["m.ts >= ?", "m.ts < ?", "f.type IN ('integer', 'real')"]  # not JSON true, false
    parameters: list[object] = [start, buckets.width, *tags.values(), start, stop]
    if buckets.field is not None:
        where.append("f.key = ?")
        parameters.append(buckets.field)
    if buckets.unless is not None:
        where.append("json_extract(m.fields, ?) IS NOT 1")  # JSON true reads as 1
        parameters.append(f'$."{buckets.unless}"')
    sql = (
        "SELECT f.key, (m.ts - ?) / ? AS bucket, min(f.value), max(f.value) "
        f"FROM {measurement} AS m, json_each(m.fields) AS f WHERE {' AND '.join(where)} "
        "GROUP BY f.key, bucket ORDER BY f.key, bucket"
    )
    return sql, tuple(parameters)
