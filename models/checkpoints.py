"""Checkpoints: every asset model on disk, tagged, saved atomically, restored at start-up.

One SQLite file in the data dir (``models.db``): a row per asset with its pickled model, the
river version and the profile fingerprint it was built with. Saving many models is one
transaction, so a crash leaves either the old or the new checkpoint of each, never half.
A checkpoint whose tags do not match the running code is moved to ``set_aside`` with the
reason, kept for inspection, and the asset starts fresh. The same file holds the log of
teachings and resets asked by maintenance staff (`models.feedback`): a change is marked
applied in the transaction that saves the model it changed.
"""

from __future__ import annotations

import gc
import logging
import pickle
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

from ingest.sqlite import connect, transaction
from models import feedback
from models.asset import AssetModel

log = logging.getLogger(__name__)

Key = tuple[str, str]
RIVER_VERSION = version("river")


class Checkpoints(Protocol):
    """Where asset models are saved and restored.

    This file (`CheckpointStore`), or a database every instance of a cluster reaches
    (`models.sharedcheckpoints`, docs/design.md §10).
    """

    def save(
        self,
        models: Iterable[tuple[Key, AssetModel, str]],
        *,
        applied: Sequence[tuple[int, int]] = (),
    ) -> int:
        """Save (key, model, fingerprint) triples at once, and settle `applied` changes."""

    def profile_of(self, key: Key) -> str | None:
        """The profile an asset's saved model was built with, if there is one."""

    def load(self, key: Key, fingerprint: str) -> AssetModel | None:
        """The saved model of an asset, or None when there is none or it does not match."""

    def count(self) -> int:
        """How many models are saved."""

    def close(self) -> None:
        """Release the file or connection."""


def checkpoint_rows(
    models: Iterable[tuple[Key, AssetModel, str]],
) -> list[tuple[str, str, str, str, str, bytes]]:
    """The rows both stores save for (key, model, fingerprint) triples.

    Each is (site, asset, profile, fingerprint, river version, pickled model).
    """
    return [
        (
            site,
            asset,
            model.profile.name,
            fp,
            RIVER_VERSION,
            pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
        )
        for (site, asset), model, fp in models
    ]


def restore(
    row: Sequence[Any] | None, fingerprint: str, set_aside: Callable[[str], None]
) -> AssetModel | None:
    """The model of a saved (profile, fingerprint, river, pickle) row, as both stores load it.

    None without a row; a row that cannot be used (another river version or profile, not
    loadable) is handed to ``set_aside`` with the reason, and the asset starts fresh.
    """
    if row is None:
        return None
    model, reason = _unpickle(row, fingerprint)
    if model is None:
        set_aside(reason)
    return model


def _unpickle(row: Sequence[Any], fingerprint: str) -> tuple[AssetModel | None, str]:
    """The model of a saved row, or why it is unusable.

    A checkpoint is used only with the river version and profile it was saved with.
    """
    profile, saved_fp, saved_river, blob = row
    if saved_river != RIVER_VERSION:
        return None, f"saved with river {saved_river}, running {RIVER_VERSION}"
    if saved_fp != fingerprint:
        return None, f"profile {profile!r} changed since it was saved"
    # Unpickling with the collector paused is ~5x faster (docs/design.md §12).
    gc.disable()
    try:
        model = pickle.loads(bytes(blob))
    except Exception as exc:  # a corrupt or foreign blob must not stop the pipeline
        return None, f"cannot be loaded: {type(exc).__name__}: {exc}"
    finally:
        gc.enable()
    if isinstance(model, AssetModel):
        return model, ""
    return None, f"holds a {type(model).__name__}, not an asset model"


class CheckpointStore:
    """Saves and loads asset models.

    Parameters
    ----------
    path
        The SQLite file (created when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS models (
                site TEXT NOT NULL, asset TEXT NOT NULL, profile TEXT NOT NULL,
                fingerprint TEXT NOT NULL, river TEXT NOT NULL, model BLOB NOT NULL,
                saved_at TEXT NOT NULL DEFAULT (datetime('now')),
                PRIMARY KEY (site, asset)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS set_aside (
                site TEXT NOT NULL, asset TEXT NOT NULL, profile TEXT NOT NULL,
                fingerprint TEXT NOT NULL, river TEXT NOT NULL, model BLOB NOT NULL,
                reason TEXT NOT NULL, set_aside_at TEXT NOT NULL DEFAULT (datetime('now')));
            """
        )
        feedback.create_tables(self._conn)

    def save(
        self,
        models: Iterable[tuple[Key, AssetModel, str]],
        *,
        applied: Sequence[tuple[int, int]] = (),
    ) -> int:
        """Save (key, model, fingerprint) triples in one transaction; return how many.

        `applied` marks changes of the feedback log (row id, readings taught) applied in the
        same transaction: a taught or reset model and the end of its pending change are
        durable together, or neither is.
        """
        rows = checkpoint_rows(models)
        with transaction(self._conn, f"checkpoints {self.path}") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO models (site, asset, profile, fingerprint, river, model)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            feedback.settle(conn, list(applied), time.time())
        return len(rows)

    def profile_of(self, key: Key) -> str | None:
        """The profile an asset's saved model was built with, if there is one."""
        row = self._conn.execute(
            "SELECT profile FROM models WHERE site = ? AND asset = ?", key
        ).fetchone()
        return None if row is None else str(row[0])

    def load(self, key: Key, fingerprint: str) -> AssetModel | None:
        """The saved model of an asset, or None when there is none or it does not match."""
        row = self._conn.execute(
            "SELECT profile, fingerprint, river, model FROM models WHERE site = ? AND asset = ?",
            key,
        ).fetchone()
        return restore(row, fingerprint, lambda reason: self._set_aside(key, reason))

    def _set_aside(self, key: Key, reason: str) -> None:
        log.warning("checkpoint of %s/%s set aside (%s): the asset starts fresh", *key, reason)
        with transaction(self._conn, f"checkpoints {self.path}") as conn:
            conn.execute(
                "INSERT INTO set_aside (site, asset, profile, fingerprint, river, model, reason)"
                " SELECT site, asset, profile, fingerprint, river, model, ? FROM models"
                " WHERE site = ? AND asset = ?",
                (reason, *key),
            )
            conn.execute("DELETE FROM models WHERE site = ? AND asset = ?", key)

    def count(self) -> int:
        """How many models are saved."""
        try:
            (n,) = self._conn.execute("SELECT count(*) FROM models").fetchone()
        except sqlite3.Error:
            return 0
        return int(n)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()
