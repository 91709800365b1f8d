"""Alert state on disk (``<data_dir>/alerts.db``): what must survive a restart.

Open episodes, silences, shelves, the recent firings of each alert (flap damping), the
dispatcher's groups and notification log (a row per group), the health map, reroute advice,
the fleet clock and each asset's last reading time, the recently resolved alerts (so that
feedback can name an alert after it cleared) and the labels of maintenance staff
(`alerts.labels`); and, in the same file and the same transaction, the notification outbox.
So a crash either keeps a state change and the notifications it causes, or neither: a
restart never forgets a firing alert nor fires it twice.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from alerts import labels, outbox
from alerts.base import AssetKey, EpisodeKey, Notification
from alerts.history import pending
from alerts.labels import Label
from ingest.base import Point
from ingest.sqlite import connect, transaction

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    rule TEXT NOT NULL, site TEXT NOT NULL, asset TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (rule, site, asset)
);
CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    site TEXT NOT NULL, asset TEXT NOT NULL, kind TEXT, last_ts INTEGER NOT NULL,
    heard INTEGER NOT NULL, PRIMARY KEY (site, asset)
);
CREATE TABLE IF NOT EXISTS health (
    site TEXT NOT NULL, asset TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (site, asset)
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shelves (alert_id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS flaps (
    rule TEXT NOT NULL, site TEXT NOT NULL, asset TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (rule, site, asset)
);
CREATE TABLE IF NOT EXISTS resolved (
    alert_id TEXT PRIMARY KEY, saved_at REAL NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS resolved_saved_at ON resolved (saved_at);
"""

#: Resolved alerts are kept for feedback at most this long (wall-clock seconds) ...
KEEP_RESOLVED_SECONDS = 30 * 86400.0
#: ... and at most this many: a verdict comes within days of an alert, when the visit is
#: written up; 10,000 is weeks of a large fleet's alerts at EEMUA's benchmark rate, ~10 MB.
KEEP_RESOLVED = 10_000


@dataclass(slots=True)
class Snapshot:
    """Everything `AlertState.load` restores."""

    episodes: dict[EpisodeKey, dict[str, Any]] = field(default_factory=dict)
    silences: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[AssetKey, tuple[str | None, int, int]] = field(default_factory=dict)
    health: dict[AssetKey, dict[str, Any]] = field(default_factory=dict)
    kv: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    shelves: list[dict[str, Any]] = field(default_factory=list)
    flaps: dict[EpisodeKey, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Changes:
    """What one `AlertState.save` commits; None for a key (an episode, a shelf...) deletes it."""

    episodes: dict[EpisodeKey, dict[str, Any] | None] = field(default_factory=dict)
    silences: list[dict[str, Any]] = field(default_factory=list)
    assets: dict[AssetKey, tuple[str | None, int, int]] = field(default_factory=dict)
    health: dict[AssetKey, dict[str, Any]] = field(default_factory=dict)
    kv: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    shelves: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    flaps: dict[EpisodeKey, list[int] | None] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    #: Episodes that resolved, by alert id (kept for feedback).
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: list[Label] = field(default_factory=list)
    #: ``alert_action`` points of the commands, kept until the store has them.
    records: list[Point] = field(default_factory=list)
    #: By firing episode, the receivers told it fired and when: saved only where assets'
    #: state is shared (`alerts.assetstate`), so that a new owner knows.
    told: dict[EpisodeKey, dict[str, int]] = field(default_factory=dict)
    #: Assets this instance no longer holds: their tracked values and health go.
    forgotten: set[AssetKey] = field(default_factory=set)

    @property
    def urgent(self) -> bool:
        """What must be committed with the batch that caused it (the rest may wait a second)."""
        return bool(
            self.episodes
            or self.silences
            or self.notifications
            or self.groups
            or self.shelves
            or self.flaps
            or self.resolved
            or self.labels
            or self.records
            or self.told
            or self.forgotten
        )

    def __bool__(self) -> bool:
        return bool(
            self.episodes
            or self.silences
            or self.assets
            or self.health
            or self.kv
            or self.groups
            or self.shelves
            or self.flaps
            or self.notifications
            or self.resolved
            or self.labels
            or self.records
            or self.told
            or self.forgotten
        )


class AlertState:
    """The SQLite file of the alerts.

    Parameters
    ----------
    path
        The database file; created with its tables (and the outbox's) when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.conn.executescript(_SCHEMA)
        outbox.create_tables(self.conn)
        labels.create_tables(self.conn)
        pending.create_tables(self.conn)

    def load(self) -> Snapshot:
        """Everything saved."""
        snap = Snapshot()
        c = self.conn
        for rule, site, asset, data in c.execute("SELECT rule, site, asset, data FROM episodes"):
            snap.episodes[(rule, site, asset)] = orjson.loads(data)
        snap.silences = [orjson.loads(d) for (d,) in c.execute("SELECT data FROM silences")]
        for site, asset, kind, last_ts, heard in c.execute(
            "SELECT site, asset, kind, last_ts, heard FROM assets"
        ):
            snap.assets[(site, asset)] = (kind, last_ts, heard)
        for site, asset, data in c.execute("SELECT site, asset, data FROM health"):
            snap.health[(site, asset)] = orjson.loads(data)
        snap.kv = {k: orjson.loads(d) for k, d in c.execute("SELECT key, data FROM kv")}
        snap.groups = [orjson.loads(d) for (d,) in c.execute("SELECT data FROM groups")]
        snap.shelves = [orjson.loads(d) for (d,) in c.execute("SELECT data FROM shelves")]
        for rule, site, asset, data in c.execute("SELECT rule, site, asset, data FROM flaps"):
            snap.flaps[(rule, site, asset)] = orjson.loads(data)
        return snap

    def save(self, changes: Changes, now: float) -> None:
        """Commit all of `changes` in one transaction (raises `StoreError`, retryable)."""
        with transaction(self.conn, "saving alert state") as c:
            upserts = [(*k, orjson.dumps(v)) for k, v in changes.episodes.items() if v is not None]
            deletes = [k for k, v in changes.episodes.items() if v is None]
            c.executemany("INSERT OR REPLACE INTO episodes VALUES (?, ?, ?, ?)", upserts)
            c.executemany("DELETE FROM episodes WHERE rule=? AND site=? AND asset=?", deletes)
            c.executemany(
                "INSERT OR REPLACE INTO silences VALUES (?, ?)",
                [(s["id"], orjson.dumps(s)) for s in changes.silences],
            )
            forgotten = list(changes.forgotten)
            c.executemany("DELETE FROM assets WHERE site = ? AND asset = ?", forgotten)
            c.executemany("DELETE FROM health WHERE site = ? AND asset = ?", forgotten)
            c.executemany(
                "INSERT OR REPLACE INTO assets VALUES (?, ?, ?, ?, ?)",
                [(*k, *v) for k, v in changes.assets.items()],
            )
            c.executemany(
                "INSERT OR REPLACE INTO health VALUES (?, ?, ?)",
                [(*k, orjson.dumps(v)) for k, v in changes.health.items()],
            )
            c.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                [(k, orjson.dumps(v)) for k, v in changes.kv.items()],
            )
            c.executemany(
                "INSERT OR REPLACE INTO groups VALUES (?, ?)",
                [(k, orjson.dumps(v)) for k, v in changes.groups.items() if v is not None],
            )
            c.executemany(
                "DELETE FROM groups WHERE name = ?",
                [(k,) for k, v in changes.groups.items() if v is None],
            )
            c.executemany(
                "INSERT OR REPLACE INTO shelves VALUES (?, ?)",
                [(k, orjson.dumps(v)) for k, v in changes.shelves.items() if v is not None],
            )
            c.executemany(
                "DELETE FROM shelves WHERE alert_id = ?",
                [(k,) for k, v in changes.shelves.items() if v is None],
            )
            c.executemany(
                "INSERT OR REPLACE INTO flaps VALUES (?, ?, ?, ?)",
                [(*k, orjson.dumps(v)) for k, v in changes.flaps.items() if v is not None],
            )
            c.executemany(
                "DELETE FROM flaps WHERE rule=? AND site=? AND asset=?",
                [k for k, v in changes.flaps.items() if v is None],
            )
            if changes.resolved:
                c.executemany(
                    "INSERT OR REPLACE INTO resolved VALUES (?, ?, ?)",
                    [(k, now, orjson.dumps(v)) for k, v in changes.resolved.items()],
                )
                _prune_resolved(c, now)
            labels.save(c, changes.labels)
            pending.save(c, changes.records)
            if changes.notifications:
                outbox.enqueue(c, changes.notifications, now)

    def resolved(self, alert_id: str) -> dict[str, Any] | None:
        """The saved episode of a resolved alert (`alerts.lifecycle.Episode` state), if kept."""
        row = self.conn.execute(
            "SELECT data FROM resolved WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def label(self, alert_id: str) -> Label | None:
        """The label of an alert, if it has one."""
        return labels.label_of(self.conn, alert_id)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()


def _prune_resolved(c: sqlite3.Connection, now: float) -> None:
    """Keep the resolved alerts of the last `KEEP_RESOLVED_SECONDS`, at most `KEEP_RESOLVED`.

    Row ids grow with each insert, so those more than `KEEP_RESOLVED` below the newest are
    older than the newest `KEEP_RESOLVED`: both deletes walk an index, never the table.
    """
    c.execute("DELETE FROM resolved WHERE saved_at < ?", (now - KEEP_RESOLVED_SECONDS,))
    c.execute(
        "DELETE FROM resolved WHERE rowid <= (SELECT max(rowid) FROM resolved) - ?",
        (KEEP_RESOLVED,),
    )
