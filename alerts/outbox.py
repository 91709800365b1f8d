"""The durable notification outbox: where notifications wait for their receivers.

Notifications wait in the ``outbox`` table of the alert engine's SQLite file until their
receiver has taken them (`alerts.courier` delivers them). The engine adds them with `enqueue`
inside the same transaction that changes alert state, so a state change and its notification
commit together or not at all, and the pipeline thread never waits on a receiver. A refusal
that no retry can fix moves a row to ``undeliverable``, where `Outbox` shows it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from alerts.base import Notification
from common.closing import Closing
from ingest.sqlite import connect

# What decoding a stored body raises when it is not a notification (orjson's error is a
# ValueError; a missing key or a wrong shape fail in `Notification.from_json`).
UNREADABLE = (ValueError, KeyError, TypeError)

# Plain statements, no ``executescript``: that would COMMIT the caller's open transaction.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL, body BLOB NOT NULL,
        created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0, last_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS outbox_receiver_id ON outbox (receiver, id)",
    """CREATE TABLE IF NOT EXISTS undeliverable (
        id INTEGER PRIMARY KEY, receiver TEXT NOT NULL, body BLOB NOT NULL,
        created REAL NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL,
        failed_at REAL NOT NULL)""",
)


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the outbox tables if missing (idempotent).

    Safe inside the caller's open transaction, which it neither commits nor ends.
    """
    for statement in _SCHEMA:
        conn.execute(statement)


def enqueue(conn: sqlite3.Connection, notifications: Sequence[Notification], now: float) -> None:
    """Add notifications to the outbox on the caller's connection, in its transaction.

    Nothing here begins or commits: the rows become visible to the `Courier` when the caller
    commits (then it calls `Courier.poke`), and vanish with a rollback. Each row is due at
    once; `now` (wall-clock seconds) is recorded as its creation time.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ingest.sqlite import transaction
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "alerts.db"
    >>> conn = connect(path)
    >>> create_tables(conn)
    >>> with transaction(conn, "alert state"):
    ...     enqueue(conn, [Notification("ops", {}, [], id="n1")], now=0.0)
    >>> outbox = Outbox(path)
    >>> outbox.depth()
    {'ops': 1}
    >>> outbox.close(); conn.close()
    """
    conn.executemany(
        "INSERT INTO outbox (receiver, body, created) VALUES (?, ?, ?)",
        [(n.receiver, orjson.dumps(n.to_json()), now) for n in notifications],
    )


@dataclass(frozen=True, slots=True)
class Undeliverable:
    """A notification its receiver refused for good, kept for the operator.

    Parameters
    ----------
    id
        Its outbox row id (ids are never reused).
    receiver
        The receiver that refused it.
    notification
        What was to be delivered; None when the stored row could not be read (`error` says
        why).
    attempts
        Delivery attempts made, the refused one included.
    error
        The receiver's last error.
    failed_at
        When it was given up, wall-clock seconds.
    """

    id: int
    receiver: str
    notification: Notification | None
    attempts: int
    error: str
    failed_at: float


class Outbox(Closing):
    """Read side of the outbox, for the CLI and status: what waits and what was given up.

    Parameters
    ----------
    path
        The alert engine's SQLite file (``<data_dir>/alerts.db``); created if missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = connect(path)
        create_tables(self._conn)

    def depth(self) -> dict[str, int]:
        """Notifications waiting, by receiver (receivers with none are left out)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT receiver, count(*) FROM outbox GROUP BY receiver ORDER BY receiver"
            ).fetchall()
        return {receiver: count for receiver, count in rows}

    def undeliverable(self, limit: int = 100) -> list[Undeliverable]:
        """The `limit` notifications given up most recently, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, receiver, body, attempts, error, failed_at FROM undeliverable "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Undeliverable(row_id, receiver, _try_decode(body), attempts, error, failed_at)
            for row_id, receiver, body, attempts, error, failed_at in rows
        ]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()


def decode(body: bytes) -> Notification:
    """The notification a row's body holds."""
    return Notification.from_json(orjson.loads(body))


def _try_decode(body: bytes) -> Notification | None:
    """The notification a row's body holds, or None when it holds none."""
    try:
        return decode(body)
    except UNREADABLE:
        return None
