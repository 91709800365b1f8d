"""The durable log of what people asked of the models: teach an episode as normal, or reset.

Maintenance staff's verdict "false alarm: this is normal for this machine" (``meshwatch
feedback ALERT_ID normal``) teaches the asset's model the flagged episode; ``meshwatch model
reset SITE/ASSET`` discards the model so it learns again from scratch (after maintenance: a
new bearing changes what normal is). Both arrive as commands on the MQTT network thread,
while the models live on the scoring thread and must never be touched from another. So the
command thread only *records* the change, as a row of the ``feedback`` table of
``models.db`` (one transaction), and pokes `FeedbackLog`; the scoring thread, at the start
of its next batch or tick, reads the pending rows and applies them in order
(`models.registry.ModelRegistry.apply`), saving the changed models' checkpoints and marking
the rows applied in ONE transaction (`settle`, called by `models.checkpoints.CheckpointStore`).

What a SIGKILL at any moment leaves:

- before the request's commit: nothing; the command is redelivered (paho acknowledges a
  command only after its handler returned) and recorded then;
- after it, before the application's commit: the row is pending, and the first batch or
  tick after the restart applies it (a new `FeedbackLog` starts poked);
- after the application's commit: the checkpoint holds the taught (or fresh) model and the
  row is marked applied, so it is not applied twice, and no older checkpoint can undo a
  reset (the fresh model *is* the checkpoint).

Each row has a unique ``key`` (``accept:<alert id>``, ``reset:<request id>``): a command
redelivered after it was applied is recognised, and changes nothing. Applied rows are kept
`KEEP_APPLIED` seconds for that, then pruned.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.sqlite import connect, transaction

Action = Literal["accept", "reset"]

#: Applied rows are kept this long (s) so that a command redelivered late is recognised:
#: a day covers the pipeline's MQTT session (``mqtt.session_expiry``, 86400 s by default),
#: within which the broker redelivers; 30 days leaves a month of history to look back on.
KEEP_APPLIED = 30 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    site TEXT NOT NULL,
    asset TEXT NOT NULL,
    start_ns INTEGER,
    end_ns INTEGER,
    by TEXT NOT NULL,
    comment TEXT NOT NULL,
    requested_at REAL NOT NULL,
    applied_at REAL,
    taught INTEGER
);
CREATE INDEX IF NOT EXISTS feedback_pending ON feedback (id) WHERE applied_at IS NULL;
"""


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the ``feedback`` table in a models.db connection (idempotent)."""
    conn.executescript(_SCHEMA)


@dataclass(frozen=True, slots=True)
class ModelChange:
    """One change asked of one asset's model.

    Parameters
    ----------
    id
        Row id: changes are applied in this order.
    key
        What makes a request unique (``accept:<alert id>``, ``reset:<request id>``).
    action
        ``accept``: learn the readings flagged from `start_ns` to `end_ns` as normal;
        ``reset``: discard the model, start a new warm-up.
    site, asset
        Whose model.
    start_ns, end_ns
        The episode to accept (event time, ns); None for a reset.
    by, comment, requested_at
        Who asked, why, and when (wall-clock seconds).

    Examples
    --------
    >>> ModelChange(0, "accept:a1", "accept", "lyon", "cnc-1", 10, 5, "ana", "", 0.0)
    Traceback (most recent call last):
    ...
    ValueError: accept of lyon/cnc-1 needs start_ns <= end_ns, got 10 and 5
    """

    id: int
    key: str
    action: Action
    site: str
    asset: str
    start_ns: int | None
    end_ns: int | None
    by: str
    comment: str
    requested_at: float

    def __post_init__(self) -> None:
        if self.action not in ("accept", "reset"):
            raise ValueError(f"unknown model change {self.action!r} (accept or reset)")
        if self.action == "accept" and (
            self.start_ns is None or self.end_ns is None or self.start_ns > self.end_ns
        ):
            raise ValueError(
                f"accept of {self.site}/{self.asset} needs start_ns <= end_ns, "
                f"got {self.start_ns} and {self.end_ns}"
            )


class FeedbackLog:
    """The ``feedback`` table of models.db, and the flag that tells the scoring thread to look.

    `request` (and `withdraw`) run on the command thread; `waiting`, `taken` and `pending` on
    the scoring thread, which checks `waiting` (an attribute read) once per batch and reads
    the table only when it is set. A new log starts set: rows left pending by a crash are
    applied by the first batch or tick.

    Parameters
    ----------
    path
        The models' SQLite file (``<data_dir>/models.db``), shared with the checkpoints.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        create_tables(self._conn)
        self._lock = threading.Lock()  # one connection, two threads
        self._waiting = threading.Event()
        self._waiting.set()

    @property
    def waiting(self) -> bool:
        """Whether changes may be pending (poked since the scoring thread last looked)."""
        return self._waiting.is_set()

    def poke(self) -> None:
        """Tell the scoring thread to look at the pending changes at its next batch or tick."""
        self._waiting.set()

    def taken(self) -> None:
        """The scoring thread is about to read the pending changes (before `pending`)."""
        self._waiting.clear()

    def request(
        self,
        key: str,
        action: Action,
        site: str,
        asset: str,
        *,
        by: str,
        comment: str,
        now: float,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> bool:
        """Record a change, durably; False when one with this key was recorded before.

        Does not poke: the caller pokes once everything the command changes is saved, or
        withdraws the change when something else could not be. Raises `StoreError`.
        """
        ModelChange(0, key, action, site, asset, start_ns, end_ns, by, comment, now)  # checks
        with self._lock, transaction(self._conn, f"feedback log {self.path}") as c:
            cursor = c.execute(
                "INSERT OR IGNORE INTO feedback (key, action, site, asset, start_ns, end_ns,"
                " by, comment, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, action, site, asset, start_ns, end_ns, by, comment, now),
            )
            return cursor.rowcount == 1

    def withdraw(self, key: str) -> None:
        """Remove a change recorded by `request` that is not applied yet (raises `StoreError`)."""
        with self._lock, transaction(self._conn, f"feedback log {self.path}") as c:
            c.execute("DELETE FROM feedback WHERE key = ? AND applied_at IS NULL", (key,))

    def pending(self) -> list[ModelChange]:
        """The changes not applied yet, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, key, action, site, asset, start_ns, end_ns, by, comment,"
                " requested_at FROM feedback WHERE applied_at IS NULL ORDER BY id"
            ).fetchall()
        return [ModelChange(*row) for row in rows]

    def has_model(self, site: str, asset: str) -> bool:
        """Whether a checkpoint of this asset's model is saved."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT 1 FROM models WHERE site = ? AND asset = ?", (site, asset)
                ).fetchone()
            except sqlite3.OperationalError:  # no checkpoint was ever saved: no table yet
                return False
        return row is not None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def settle(conn: sqlite3.Connection, applied: list[tuple[int, int]], now: float) -> None:
    """Mark changes applied, inside the caller's transaction (with the models they changed).

    `applied` holds (row id, readings taught) pairs. Applied rows older than `KEEP_APPLIED`
    are pruned in the same transaction.
    """
    if not applied:
        return
    conn.executemany(
        "UPDATE feedback SET applied_at = ?, taught = ? WHERE id = ?",
        [(now, taught, row) for row, taught in applied],
    )
    conn.execute(
        "DELETE FROM feedback WHERE applied_at IS NOT NULL AND applied_at < ?",
        (now - KEEP_APPLIED,),
    )
