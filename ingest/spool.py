"""The durable spool: line protocol on disk until InfluxDB has taken it.

A bounded FIFO of chunks in a SQLite file. The pipeline appends a chunk per committed batch
(and acks only then); the flusher takes the oldest chunks, writes them, and removes them. When
the spool holds ``max_bytes`` an append raises `SpoolFull`, and the pipeline stops acking, so
the broker keeps the backlog: nothing is dropped. Chunks the server refuses as malformed are
moved to a ``rejected`` table, kept for inspection.
"""

from __future__ import annotations

import sqlite3
import threading
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
    ingest.errors.SpoolFull: spool is full (32 of 100 bytes held; a chunk of 100 bytes waits): \
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
                id INTEGER PRIMARY KEY, body BLOB NOT NULL, lines INTEGER NOT NULL,
                error TEXT NOT NULL, rejected_at TEXT NOT NULL DEFAULT (datetime('now')));
            """
        )
        lines, size = self._conn.execute(
            "SELECT coalesce(sum(lines), 0), coalesce(sum(bytes), 0) FROM chunks"
        ).fetchone()
        self.depth_lines: int = lines
        self.depth_bytes: int = size

    def append(self, body: bytes, lines: int) -> None:
        """Store a chunk durably; raise `SpoolFull` (nothing stored) when over the bound."""
        size = len(body)
        with self._lock:
            if self.depth_bytes and self.depth_bytes + size > self.max_bytes:
                raise SpoolFull(
                    f"spool is full ({self.depth_bytes} of {self.max_bytes} bytes held; a chunk "
                    f"of {size} bytes waits): InfluxDB is not taking writes, or "
                    "spool.max_bytes is too small"
                )
            try:
                self._conn.execute(
                    "INSERT INTO chunks (body, lines, bytes) VALUES (?, ?, ?)",
                    (body, lines, size),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"spool {self.path}: {exc}") from exc
            self.depth_lines += lines
            self.depth_bytes += size

    def oldest(self, max_lines: int) -> list[Chunk]:
        """The oldest chunks adding up to at most `max_lines` (always at least one if any)."""
        chunks: list[Chunk] = []
        total = 0
        with self._lock:
            cursor = self._conn.execute("SELECT id, body, lines FROM chunks ORDER BY id")
            for row in cursor:
                chunk = Chunk(*row)
                if chunks and total + chunk.lines > max_lines:
                    break
                chunks.append(chunk)
                total += chunk.lines
            cursor.close()
        return chunks

    def remove(self, chunks: list[Chunk]) -> None:
        """Forget chunks the server has taken."""
        self._delete(chunks, reject_error=None)

    def reject(self, chunks: list[Chunk], error: str) -> None:
        """Move chunks the server refuses as malformed aside, with its error."""
        self._delete(chunks, reject_error=error)

    def rejected_lines(self) -> int:
        """How many lines were set aside as refused by the server."""
        with self._lock:
            (n,) = self._conn.execute("SELECT coalesce(sum(lines), 0) FROM rejected").fetchone()
        return int(n)

    def _delete(self, chunks: list[Chunk], reject_error: str | None) -> None:
        ids = [(c.id,) for c in chunks]
        with self._lock, transaction(self._conn, f"spool {self.path}") as conn:
            if reject_error is not None:
                conn.executemany(
                    "INSERT INTO rejected (id, body, lines, error) VALUES (?, ?, ?, ?)",
                    [(c.id, c.body, c.lines, reject_error) for c in chunks],
                )
            conn.executemany("DELETE FROM chunks WHERE id = ?", ids)
            self.depth_lines -= sum(c.lines for c in chunks)
            self.depth_bytes -= sum(len(c.body) for c in chunks)

    def close(self) -> None:
        """Close the file; chunks not yet written stay for the next run."""
        with self._lock:
            self._conn.close()
