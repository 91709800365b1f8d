"""Checkpoints in PostgreSQL, where every instance of a cluster reaches them.

With a clustered source (``amqp.urls``, docs/design.md §10) a partition, and the assets in
it, moves to another instance when instances come and go. The models travel with it through
this store: the instance giving a partition up saves its models before the broker hands the
queue over (`ModelRegistry.release`), and the new owner loads an asset's model on first sight,
as a single process does after a restart. After a crash (kill -9) the new owner starts from
the last periodic checkpoint (``models.checkpoint_interval``), a consistent earlier state,
as docs/design.md §7 says for a restart.

The rows are those of the ``models`` table of ``models.db``, keyed by (site, asset); a save
is one transaction. The feedback log stays in the instance's ``models.db``: changes applied
by a save are settled there right after the models are in (a crash between the two applies
the change again on the next start).

Examples
--------
>>> PostgresCheckpoints.table_names("meshwatch")
('meshwatch_models', 'meshwatch_set_aside')
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import psycopg

from common.sqlnames import table_name
from models.asset import AssetModel
from models.checkpoints import CheckpointStore, Key, checkpoint_rows, restore
from models.errors import CheckpointError

log = logging.getLogger(__name__)


class PostgresCheckpoints:
    """Saves and loads asset models in PostgreSQL (`models.checkpoints.Checkpoints`).

    Parameters
    ----------
    url
        A libpq connection URL (``postgresql://host/db``).
    local
        This instance's own store, where the feedback log lives (``models.db``).
    table_prefix
        Prefix of the two tables (``<prefix>_models``, ``<prefix>_set_aside``).
    """

    def __init__(self, url: str, local: CheckpointStore, table_prefix: str = "meshwatch") -> None:
        self.local = local
        self._models, self._set_aside_table = self.table_names(table_prefix)
        try:
            self._conn = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot reach the checkpoint database: {exc}") from exc
        with self._conn.transaction():
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._models} ("
                " site TEXT NOT NULL, asset TEXT NOT NULL, profile TEXT NOT NULL,"
                " fingerprint TEXT NOT NULL, river TEXT NOT NULL, model BYTEA NOT NULL,"
                " saved_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (site, asset))"
            )
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._set_aside_table} ("
                " site TEXT NOT NULL, asset TEXT NOT NULL, profile TEXT NOT NULL,"
                " fingerprint TEXT NOT NULL, river TEXT NOT NULL, model BYTEA NOT NULL,"
                " reason TEXT NOT NULL, set_aside_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )

    @staticmethod
    def table_names(prefix: str) -> tuple[str, str]:
        """The models and set-aside tables of `prefix` (an SQL identifier; not quoted)."""
        return table_name(prefix, "models"), table_name(prefix, "set_aside")

    def save(
        self,
        models: Iterable[tuple[Key, AssetModel, str]],
        *,
        applied: Sequence[tuple[int, int]] = (),
    ) -> int:
        """Save (key, model, fingerprint) triples in one transaction, then settle `applied`."""
        rows = checkpoint_rows(models)
        if rows:
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {self._models}"
                        " (site, asset, profile, fingerprint, river, model)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (site, asset) DO UPDATE"
                        " SET profile = EXCLUDED.profile, fingerprint = EXCLUDED.fingerprint,"
                        " river = EXCLUDED.river, model = EXCLUDED.model, saved_at = now()",
                        rows,
                    )
            except psycopg.Error as exc:
                raise CheckpointError(f"saving {len(rows)} checkpoints failed: {exc}") from exc
        if applied:
            self.local.save((), applied=applied)
        return len(rows)

    def profile_of(self, key: Key) -> str | None:
        """The profile an asset's saved model was built with, if there is one."""
        with self._conn.transaction():
            row = self._conn.execute(
                f"SELECT profile FROM {self._models} WHERE site = %s AND asset = %s", key
            ).fetchone()
        return None if row is None else str(row[0])

    def load(self, key: Key, fingerprint: str) -> AssetModel | None:
        """The saved model of an asset, or None when there is none or it does not match."""
        with self._conn.transaction():
            row = self._conn.execute(
                f"SELECT profile, fingerprint, river, model FROM {self._models}"
                " WHERE site = %s AND asset = %s",
                key,
            ).fetchone()
        return restore(row, fingerprint, lambda reason: self._set_aside(key, reason))

    def _set_aside(self, key: Key, reason: str) -> None:
        log.warning("checkpoint of %s/%s set aside (%s): the asset starts fresh", *key, reason)
        with self._conn.transaction():
            self._conn.execute(
                f"INSERT INTO {self._set_aside_table}"
                " (site, asset, profile, fingerprint, river, model, reason)"
                f" SELECT site, asset, profile, fingerprint, river, model, %s FROM {self._models}"
                " WHERE site = %s AND asset = %s",
                (reason, *key),
            )
            self._conn.execute(f"DELETE FROM {self._models} WHERE site = %s AND asset = %s", key)

    def count(self) -> int:
        """How many models are saved."""
        with self._conn.transaction():
            row = self._conn.execute(f"SELECT count(*) FROM {self._models}").fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the connection and the local file."""
        try:
            self._conn.close()
        finally:
            self.local.close()
