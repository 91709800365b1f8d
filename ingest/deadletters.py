"""Dead letters: rejected messages kept with their reason, topic, raw bytes and time.

Kept in their own SQLite file in the data dir, whatever the store, so that bad input can be
inspected (``meshwatch deadletters``), fixed and replayed. The newest ``max_rows`` are kept;
a flood of garbage cannot fill the disk.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import Reason
from ingest.sqlite import connect, transaction


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message, exactly as it came."""

    received_at: int
    topic: str
    reason: Reason
    detail: str
    payload: bytes

    def to_json(self) -> dict[str, object]:
        """The JSON form (CLI, republishing): the payload as text, or base64 when not UTF-8."""
        record: dict[str, object] = {
            "received_at": datetime.fromtimestamp(self.received_at / 1e9, UTC).isoformat(
                timespec="milliseconds"
            ),
            "reason": self.reason.value,
            "detail": self.detail,
            "topic": self.topic,
        }
        try:
            record["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            record["payload_base64"] = base64.b64encode(self.payload).decode()
        return record


class DeadLetters:
    """The dead-letter store.

    Parameters
    ----------
    path
        The SQLite file.
    max_rows
        How many dead letters to keep; the oldest go first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> dl = DeadLetters(pathlib.Path(tempfile.mkdtemp()) / "deadletters.db", max_rows=2)
    >>> dl.add([DeadLetter(n, "plant/s/a/telemetry", Reason.BAD_JSON, "x", b"{") for n in range(3)])
    >>> [d.received_at for d in dl.latest()], dl.counts()
    ([2, 1], {'bad_json': 2})
    """

    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self._conn = connect(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS deadletters (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " received_at INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,"
            " detail TEXT NOT NULL, payload BLOB NOT NULL)"
        )

    def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store letters durably in one transaction, then trim to `max_rows`."""
        with transaction(self._conn, f"dead letters {self.path}") as conn:
            conn.executemany(
                "INSERT INTO deadletters (received_at, topic, reason, detail, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                [(d.received_at, d.topic, d.reason.value, d.detail, d.payload) for d in letters],
            )
            conn.execute(
                "DELETE FROM deadletters WHERE id <= (SELECT max(id) FROM deadletters) - ?",
                (self.max_rows,),
            )

    def latest(self, limit: int = 50, reason: Reason | None = None) -> list[DeadLetter]:
        """The newest dead letters first, optionally only those of one reason."""
        sql = "SELECT received_at, topic, reason, detail, payload FROM deadletters"
        params: tuple[object, ...] = ()
        if reason is not None:
            sql += " WHERE reason = ?"
            params = (reason.value,)
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [
            DeadLetter(at, topic, Reason(r), detail, bytes(payload))
            for at, topic, r, detail, payload in rows
        ]

    def counts(self) -> dict[str, int]:
        """How many dead letters are kept, by reason."""
        rows = self._conn.execute(
            "SELECT reason, count(*) FROM deadletters GROUP BY reason ORDER BY reason"
        )
        return {reason: n for reason, n in rows}

    def close(self) -> None:
        """Close the file."""
        self._conn.close()
