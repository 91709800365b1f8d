"""The durable spool: line protocol on disk until InfluxDB has taken it.

A bounded FIFO of chunks in a SQLite file. The pipeline appends a batch's chunks in one
transaction (and acks only then); the flusher takes the oldest chunks, writes them, and
removes them. When the spool holds ``max_bytes`` an append raises `SpoolFull`, and the
pipeline stops acking, so the broker keeps the backlog: nothing is dropped. Lines the server
refuses as malformed are kept in a ``rejected`` table with its error, for inspection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import SpoolFull, StoreError
from ingest.sqlite import connect, transaction


@dataclass(frozen=True, slots=True)
class Chunk:
    """Lines appended together; `id` orders chunks oldest first."""

    id: int
    body: bytes
    lines: int


class Spool:
    """A bounded, thread-safe, on-disk FIFO of line-protocol chunks.

    Parameters
    ----------
    path
        The SQLite file; chunks left by an earlier run are kept and drained first.
    max_bytes
        Bound on the bodies held; an append past it raises `SpoolFull`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> spool = Spool(pathlib.Path(tempfile.mkdtemp()) / "spool.db", max_bytes=100)
    >>> spool.append(b"telemetry,site=s,asset=a t=1.0 1", lines=1)
    >>> [c.lines for c in spool.oldest(max_lines=10)], spool.depth_lines
    ([1], 1)
    >>> spool.append(b"x" * 100, lines=1)
    Traceback (most recent call last):
    ...
    ingest.errors.SpoolFull: spool is full (32 of 100 bytes held; 100 bytes wait): \
InfluxDB is not taking writes, or spool.max_bytes is too small
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn = connect(path)
        self._conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS chunks (
                id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL,
                lines INTEGER NOT NULL, bytes INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS rejected (
                id INTEGER PRIMARY KEY AUTOINCREMENT, line BLOB NOT NULL, error TEXT NOT NULL,
                rejected_at TEXT NOT NULL DEFAULT (datetime('now')));
            """
        )
        lines, size = self._conn.execute(
            "SELECT coalesce(sum(lines), 0), coalesce(sum(bytes), 0) FROM chunks"
        ).fetchone()
        self.depth_lines: int = lines
        self.depth_bytes: int = size

    def append(self, body: bytes, lines: int) -> None:
        """Store one chunk durably (see `append_many`)."""
        self.append_many([(body, lines)])

    def append_many(self, chunks: Sequence[tuple[bytes, int]]) -> None:
        """Store chunks durably in one transaction, or raise `SpoolFull` storing nothing.

        An empty spool takes any batch, so one large batch cannot stall for ever.
        """
        size = sum(len(body) for body, _ in chunks)
        with self._lock:
            if self.depth_bytes and self.depth_bytes + size > self.max_bytes:
                raise SpoolFull(
                    f"spool is full ({self.depth_bytes} of {self.max_bytes} bytes held; "
                    f"{size} bytes wait): InfluxDB is not taking writes, or "
                    "spool.max_bytes is too small"
                )
            with transaction(self._conn, f"spool {self.path}") as conn:
                conn.executemany(
                    "INSERT INTO chunks (body, lines, bytes) VALUES (?, ?, ?)",
                    [(body, lines, len(body)) for body, lines in chunks],
                )
            self.depth_lines += sum(lines for _, lines in chunks)
            self.depth_bytes += size

    def oldest(self, max_lines: int) -> list[Chunk]:
        """The oldest chunks adding up to at most `max_lines` (always at least one if any)."""
        chunks: list[Chunk] = []
        total = 0
        with self._lock:
            try:
                cursor = self._conn.execute("SELECT id, body, lines FROM chunks ORDER BY id")
                for row in cursor:
                    chunk = Chunk(*row)
                    if chunks and total + chunk.lines > max_lines:
                        break
                    chunks.append(chunk)
                    total += chunk.lines
                cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(f"spool {self.path}: {exc}") from exc
        return chunks

    def remove(self, chunks: Sequence[Chunk], refused: Sequence[tuple[bytes, str]] = ()) -> None:
        """Forget chunks the server has taken, keeping the `refused` (line, error) pairs."""
        with self._lock:
            with transaction(self._conn, f"spool {self.path}") as conn:
                conn.executemany("INSERT INTO rejected (line, error) VALUES (?, ?)", list(refused))
                conn.executemany("DELETE FROM chunks WHERE id = ?", [(c.id,) for c in chunks])
            self.depth_lines -= sum(c.lines for c in chunks)
            self.depth_bytes -= sum(len(c.body) for c in chunks)

    def rejected(self) -> list[tuple[bytes, str]]:
        """The lines the server refused, oldest first, with its error."""
        with self._lock:
            rows = self._conn.execute("SELECT line, error FROM rejected ORDER BY id").fetchall()
        return [(bytes(line), error) for line, error in rows]

    def close(self) -> None:
        """Close the file; chunks not yet written stay for the next run."""
        with self._lock:
            self._conn.close()
