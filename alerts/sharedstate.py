"""Assets' alert state in PostgreSQL, where every instance of a cluster reaches it.

With a clustered source (``amqp.urls``, docs/design.md §10) an asset moves to another
instance with its partition; its alert state (`alerts.assetstate.AssetAlerts`) moves through
this store, as its model moves through `models.sharedcheckpoints`. The tables are those of
``alerts.db`` that belong to assets, keyed the same way: episodes and flap histories by
(site, asset, rule), tracked assets and health by (site, asset), shelves by alert id; an
episode row also holds who was told its alert fired (``told``).

Each asset row names its *holder*, the instance that reads the asset now. An instance claims
the assets it reads (`claim`, on their first reading), saves only those it holds (a save
skips, and reports, an asset another instance claimed meanwhile: `save`), and hands them
over with no holder when it gives their partition up (`hand_over`), or keeps holding them
when it stops; on its next start it takes back those it still holds (`held`). Every call is
one transaction; rows are locked in (site, asset) order, so two instances never deadlock.

Examples
--------
>>> PostgresAlertState.table_names("meshwatch")[:2]
('meshwatch_alert_assets', 'meshwatch_alert_episodes')
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg

from alerts.assetstate import AssetAlerts, SharedChanges
from alerts.base import AssetKey
from alerts.errors import SharedStateError
from common.sqlnames import table_name

log = logging.getLogger(__name__)

_TABLES = ("assets", "episodes", "flaps", "health", "shelves")
_Cursor = psycopg.Cursor[Any]


class PostgresAlertState:
    """The `alerts.assetstate.SharedAlertState` of a cluster, in PostgreSQL.

    Parameters
    ----------
    url
        A libpq connection URL (``postgresql://host/db``).
    instance
        This instance's name (``mqtt.client_id``): the holder it writes.
    table_prefix
        Prefix of the tables (``<prefix>_alert_assets`` ...).
    """

    def __init__(self, url: str, instance: str, table_prefix: str = "meshwatch") -> None:
        self.url = url
        self.instance = instance
        names = self.table_names(table_prefix)
        self._assets, self._episodes, self._flaps, self._health, self._shelves = names
        self._conn = self._connect()
        with self._conn.transaction():
            for statement in self._schema():
                self._conn.execute(statement)

    @staticmethod
    def table_names(prefix: str) -> tuple[str, ...]:
        """The assets, episodes, flaps, health and shelves tables of `prefix`."""
        return tuple(table_name(prefix, f"alert_{t}") for t in _TABLES)

    def _schema(self) -> list[str]:
        key = "site TEXT NOT NULL, asset TEXT NOT NULL"
        return [
            f"CREATE TABLE IF NOT EXISTS {self._assets} ({key}, kind TEXT,"
            " last_ts BIGINT NOT NULL, heard BIGINT NOT NULL, clock BIGINT NOT NULL, holder TEXT,"
            " saved_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (site, asset))",
            f"CREATE INDEX IF NOT EXISTS {self._assets}_holder ON {self._assets} (holder)",
            f"CREATE TABLE IF NOT EXISTS {self._episodes} ({key}, rule TEXT NOT NULL,"
            " data BYTEA NOT NULL, told BYTEA, PRIMARY KEY (site, asset, rule))",
            f"CREATE TABLE IF NOT EXISTS {self._flaps} ({key}, rule TEXT NOT NULL,"
            " data BYTEA NOT NULL, PRIMARY KEY (site, asset, rule))",
            f"CREATE TABLE IF NOT EXISTS {self._health} ({key}, data BYTEA NOT NULL,"
            " PRIMARY KEY (site, asset))",
            f"CREATE TABLE IF NOT EXISTS {self._shelves} ({key}, alert_id TEXT PRIMARY KEY,"
            " data BYTEA NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {self._shelves}_asset ON {self._shelves} (site, asset)",
        ]

    # ---- the store ----

    def save(self, changes: SharedChanges) -> set[AssetKey]:
        """Save in one transaction; return the assets another instance holds (left unwritten)."""
        with self._transaction("saving") as cur:
            taken = self._lock(cur, changes.keys())
            mine = changes.episodes.items()
            episodes = [(s, a, r, v) for (r, s, a), v in mine if (s, a) not in taken]
            up = [(s, a, r, orjson.dumps(v)) for s, a, r, v in episodes if v is not None]
            self._upsert(cur, self._episodes, up)
            self._delete(cur, self._episodes, [(s, a, r) for s, a, r, v in episodes if v is None])
            cur.executemany(
                f"UPDATE {self._episodes} SET told = %s WHERE site = %s AND asset = %s"
                " AND rule = %s",
                [
                    (orjson.dumps(told), s, a, r)
                    for (r, s, a), told in changes.told.items()
                    if (s, a) not in taken
                ],
            )
            flaps = [(s, a, r, v) for (r, s, a), v in changes.flaps.items() if (s, a) not in taken]
            up = [(s, a, r, orjson.dumps(v)) for s, a, r, v in flaps if v is not None]
            self._upsert(cur, self._flaps, up)
            self._delete(cur, self._flaps, [(s, a, r) for s, a, r, v in flaps if v is None])
            clock = changes.clock
            assets = [(*k, *v, clock) for k, v in changes.assets.items() if k not in taken]
            self._hold(cur, assets, self.instance)
            health = [(*k, orjson.dumps(v)) for k, v in changes.health.items() if k not in taken]
            self._upsert(cur, self._health, health)
        return taken

    def hand_over(self, states: Sequence[AssetAlerts], *, keep: bool) -> set[AssetKey]:
        """Replace these assets' state at once, held by none (kept: still by this instance).

        Returns the assets another instance holds, which are left unwritten.
        """
        with self._transaction("handing over") as cur:
            taken = self._lock(cur, [s.key for s in states])
            mine = [s for s in states if s.key not in taken]
            keys = [s.key for s in mine]
            for table in (self._episodes, self._flaps, self._health, self._shelves):
                cur.executemany(f"DELETE FROM {table} WHERE site = %s AND asset = %s", keys)
            cur.executemany(
                f"INSERT INTO {self._episodes} (site, asset, rule, data, told)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (s.site, s.asset, rule, orjson.dumps(data), _told(s.told.get(rule)))
                    for s in mine
                    for rule, data in s.episodes.items()
                ],
            )
            self._upsert(
                cur,
                self._flaps,
                [(*s.key, rule, orjson.dumps(t)) for s in mine for rule, t in s.flaps.items()],
            )
            self._upsert(
                cur, self._health, [(*s.key, orjson.dumps(s.health)) for s in mine if s.health]
            )
            cur.executemany(
                f"INSERT INTO {self._shelves} (site, asset, alert_id, data)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (alert_id) DO UPDATE"
                " SET site = EXCLUDED.site, asset = EXCLUDED.asset, data = EXCLUDED.data",
                [(*s.key, d["alert_id"], orjson.dumps(d)) for s in mine for d in s.shelves],
            )
            rows = [(*s.key, s.kind, s.last_ts, s.heard, s.clock) for s in mine]
            self._hold(cur, rows, self.instance if keep else None)
        return taken

    def claim(self, keys: Collection[AssetKey]) -> dict[AssetKey, AssetAlerts]:
        """The saved state of these assets (those that have one); this instance holds them now."""
        if not keys:
            return {}
        with self._transaction("claiming assets") as cur:
            self._lock(cur, keys)
            cur.executemany(
                f"UPDATE {self._assets} SET holder = %s WHERE site = %s AND asset = %s",
                [(self.instance, *k) for k in keys],
            )
            return self._load(cur, keys)

    def held(self) -> list[AssetAlerts]:
        """The assets this instance held when it stopped or died, with their state."""
        with self._transaction("loading the assets held") as cur:
            cur.execute(
                f"SELECT site, asset FROM {self._assets} WHERE holder = %s", (self.instance,)
            )
            keys = [(str(s), str(a)) for s, a in cur.fetchall()]
            return list(self._load(cur, keys).values())

    def holders(self) -> dict[AssetKey, str | None]:
        """Every saved asset and who holds it (for operators and tests)."""
        with self._transaction("reading holders") as cur:
            cur.execute(f"SELECT site, asset, holder FROM {self._assets}")
            return {(str(s), str(a)): h for s, a, h in cur.fetchall()}

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    # ---- statements ----

    def _lock(self, cur: _Cursor, keys: Iterable[AssetKey]) -> set[AssetKey]:
        """Lock the rows of these assets, in order; return those another instance holds."""
        ordered = sorted(set(keys))
        if not ordered:
            return set()
        cur.execute(
            f"SELECT a.site, a.asset, a.holder FROM {self._assets} a"
            " JOIN unnest(%s::text[], %s::text[]) AS k(site, asset) USING (site, asset)"
            " ORDER BY a.site, a.asset FOR UPDATE OF a",
            ([s for s, _ in ordered], [a for _, a in ordered]),
        )
        mine = (None, self.instance)
        return {(str(s), str(a)) for s, a, holder in cur.fetchall() if holder not in mine}

    def _hold(
        self,
        cur: _Cursor,
        rows: Sequence[tuple[str, str, str | None, int, int, int]],
        holder: str | None,
    ) -> None:
        """Upsert (site, asset, kind, last_ts, heard, clock) rows, held by `holder`."""
        cur.executemany(
            f"INSERT INTO {self._assets} (site, asset, kind, last_ts, heard, clock, holder)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, asset) DO UPDATE"
            " SET kind = EXCLUDED.kind, last_ts = EXCLUDED.last_ts, heard = EXCLUDED.heard,"
            " clock = EXCLUDED.clock, holder = EXCLUDED.holder, saved_at = now()",
            [(*row, holder) for row in rows],
        )

    def _upsert(self, cur: _Cursor, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert or replace (site, asset[, rule], data) rows."""
        if not rows:
            return
        keyed = "site, asset, rule" if len(rows[0]) == 4 else "site, asset"
        holes = ", ".join(["%s"] * len(rows[0]))
        cur.executemany(
            f"INSERT INTO {table} ({keyed}, data) VALUES ({holes})"
            f" ON CONFLICT ({keyed}) DO UPDATE SET data = EXCLUDED.data",
            rows,
        )

    def _delete(self, cur: _Cursor, table: str, keys: Sequence[tuple[str, ...]]) -> None:
        cur.executemany(f"DELETE FROM {table} WHERE site = %s AND asset = %s AND rule = %s", keys)

    def _load(self, cur: _Cursor, keys: Collection[AssetKey]) -> dict[AssetKey, AssetAlerts]:
        """The saved state of these assets: those with an asset row or an episode."""
        found: dict[AssetKey, dict[str, Any]] = {}

        def select(table: str, columns: str) -> list[tuple[Any, ...]]:
            cur.execute(
                f"SELECT t.site, t.asset, {columns} FROM {table} t"
                " JOIN unnest(%s::text[], %s::text[]) AS k(site, asset) USING (site, asset)",
                ([s for s, _ in keys], [a for _, a in keys]),
            )
            return cur.fetchall()

        def entry(site: str, asset: str) -> dict[str, Any]:
            return found.setdefault(
                (site, asset),
                {
                    "kind": None,
                    "last_ts": 0,
                    "heard": 0,
                    "clock": 0,
                    "episodes": {},
                    "told": {},
                    "flaps": {},
                    "health": None,
                    "shelves": [],
                },
            )

        for site, asset, kind, *times in select(self._assets, "kind, last_ts, heard, clock"):
            last_ts, heard, clock = (int(t) for t in times)
            entry(site, asset).update(kind=kind, last_ts=last_ts, heard=heard, clock=clock)
        for site, asset, rule, data, told in select(self._episodes, "rule, data, told"):
            e = entry(site, asset)
            e["episodes"][rule] = orjson.loads(data)
            if told is not None:
                e["told"][rule] = orjson.loads(told)
        for site, asset, rule, data in select(self._flaps, "rule, data"):
            entry(site, asset)["flaps"][rule] = orjson.loads(data)
        for site, asset, data in select(self._health, "data"):
            entry(site, asset)["health"] = orjson.loads(data)
        for site, asset, data in select(self._shelves, "data"):
            entry(site, asset)["shelves"].append(orjson.loads(data))
        return {key: AssetAlerts(*key, **values) for key, values in found.items()}

    # ---- the connection ----

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=False)
        except psycopg.Error as exc:
            raise SharedStateError(f"cannot reach the shared alert state: {exc}") from exc

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[_Cursor]:
        """One transaction and its cursor; a psycopg error leaves as a `SharedStateError`."""
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()  # the server restarted, or the network failed
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise SharedStateError(f"{doing} the shared alert state failed: {exc}") from exc


def _told(told: dict[str, int] | None) -> bytes | None:
    return None if told is None else orjson.dumps(told)
