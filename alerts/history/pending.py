"""Store records that wait in ``alerts.db`` for the next batch: people's actions on alerts.

An ack, a shelf, a verdict or a silence is applied on the MQTT thread, outside any batch,
while the store is written only by the pipeline's batch commit (docs/design.md §7). So the
command saves its ``alert_action`` point here, in the same transaction as the state change
it made (`alerts.state.AlertState.save`): the action and its record are durable together,
before the reply. The alert processor hands the waiting points to the next batch or tick,
and forgets them once the store committed them; a crash in between hands them over again
after the restart, and writing a point twice changes nothing (docs/design.md §5).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

from ingest.base import Point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);
"""


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the ``records`` table when missing."""
    conn.executescript(_SCHEMA)


def save(conn: sqlite3.Connection, points: Iterable[Point]) -> None:
    """Keep `points` until the store has them (inside the caller's transaction)."""
    conn.executemany("INSERT INTO records (data) VALUES (?)", [(_dumps(p),) for p in points])


def waiting(conn: sqlite3.Connection, after: int = 0) -> list[tuple[int, Point]]:
    """The points kept with a row id above `after`, oldest first, with their row ids."""
    rows = conn.execute("SELECT id, data FROM records WHERE id > ? ORDER BY id", (after,))
    return [(row_id, _loads(data)) for row_id, data in rows]


def forget(conn: sqlite3.Connection, upto: int) -> None:
    """The store committed the points up to row id `upto`: drop them."""
    conn.execute("DELETE FROM records WHERE id <= ?", (upto,))


def _dumps(p: Point) -> bytes:
    return orjson.dumps([p.measurement, dict(p.tags), dict(p.fields), p.ts])


def _loads(data: bytes) -> Point:
    measurement, tags, fields, ts = orjson.loads(data)
    return Point(measurement, tags, fields, ts)
