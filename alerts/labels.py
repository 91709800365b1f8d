"""Labels: the verdicts maintenance staff gave on alerts, kept in ``alerts.db``.

A label says, of one alert (one episode of one rule on one asset), either ``normal`` ("false
alarm: this is normal for this machine") or ``fault`` ("confirmed fault"), who said it, when
and why, with what the alert was: its rule, severity, site, asset, and the episode's start
(when its condition began) and end (when it resolved; None while it still fires). One label
per alert: a later verdict replaces the earlier one, which is kept in the label's
``history``. Labels are never pruned: they are the record `meshwatch evaluate --feedback`
scores the rules against (the precision maintenance staff saw), and they are small.

The table lives in ``alerts.db`` and is written by `alerts.state.AlertState.save`, in the
same transaction as the alert state, so a label is durable before the command's reply.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from common.timestamps import format_rfc3339

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    alert_id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    by TEXT NOT NULL,
    comment TEXT NOT NULL,
    at REAL NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    site TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    history BLOB NOT NULL
);
"""
_COLUMNS = (
    "alert_id, verdict, by, comment, at, rule, severity, site, asset, kind, start_ns, end_ns,"
    " history"
)


class Verdict(StrEnum):
    """What maintenance staff found: a false alarm (``normal``) or a ``fault``."""

    NORMAL = "normal"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Label:
    """One alert's verdict, who gave it, when (wall-clock seconds) and why, and the alert.

    ``start`` and ``end`` bound the episode in event time (ns); ``end`` is None while the
    alert fires. ``history`` holds the verdicts this one replaced, oldest first, each as
    ``{"verdict", "by", "comment", "at"}``.

    Examples
    --------
    >>> label = Label("9c0e3f2a9c0d1e4b", Verdict.FAULT, " ana ", "bearing worn", 0.0,
    ...               "anomaly", "warning", "lyon", "cnc-1", "cnc-mill", 10, None)
    >>> label.by, label.to_json()["start"]
    ('ana', '1970-01-01T00:00:00.000Z')
    >>> again = label.replaced_by(Verdict.NORMAL, "ben", "", 60.0, end=20)
    >>> again.verdict, again.end, [h["verdict"] for h in again.history]
    (<Verdict.NORMAL: 'normal'>, 20, ['fault'])
    """

    alert_id: str
    verdict: Verdict
    by: str
    comment: str
    at: float
    rule: str
    severity: str
    site: str
    asset: str
    kind: str | None
    start: int
    end: int | None
    history: tuple[Mapping[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "by", self.by.strip())
        object.__setattr__(self, "comment", self.comment.strip())
        if not self.by:
            raise ValueError("a verdict needs by (who gives it)")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"label of {self.alert_id}: the episode ends before it starts")

    def replaced_by(
        self, verdict: Verdict, by: str, comment: str, at: float, *, end: int | None
    ) -> Label:
        """The label of the same alert with a new verdict; this one joins the history.

        The same verdict from the same person with the same comment (a command delivered
        again) is no new verdict: only the episode's end may move on.
        """
        if (verdict, by.strip(), comment.strip()) == (self.verdict, self.by, self.comment):
            return replace(self, end=self.end if end is None else end)
        entry = {"verdict": self.verdict.value, "by": self.by, "comment": self.comment}
        return replace(
            self,
            verdict=verdict,
            by=by,
            comment=comment,
            at=at,
            end=end,
            history=(*self.history, {**entry, "at": self.at}),
        )

    def to_json(self) -> dict[str, Any]:
        """The form command replies and ``evaluate --feedback --json`` use (RFC 3339 times)."""
        return {
            "alert_id": self.alert_id,
            "verdict": self.verdict.value,
            "by": self.by,
            "comment": self.comment,
            "at": format_rfc3339(int(self.at * 1e9)),
            "rule": self.rule,
            "severity": self.severity,
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "start": format_rfc3339(self.start),
            "end": None if self.end is None else format_rfc3339(self.end),
            "history": [
                {**h, "at": format_rfc3339(int(float(h["at"]) * 1e9))} for h in self.history
            ],
        }

    def to_row(self) -> tuple[Any, ...]:
        """The ``labels`` row, in `_COLUMNS` order."""
        return (
            self.alert_id,
            self.verdict.value,
            self.by,
            self.comment,
            self.at,
            self.rule,
            self.severity,
            self.site,
            self.asset,
            self.kind,
            self.start,
            self.end,
            orjson.dumps(list(self.history)),
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Label:
        """Inverse of `to_row`."""
        alert_id, verdict, by, comment, at, rule, severity, site, asset, kind, start, end = row[:12]
        history = tuple(orjson.loads(row[12]))
        return cls(
            alert_id,
            verdict,
            by,
            comment,
            at,
            rule,
            severity,
            site,
            asset,
            kind,
            start,
            end,
            history,
        )


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the ``labels`` table in an alerts.db connection (idempotent)."""
    conn.executescript(_SCHEMA)


def save(conn: sqlite3.Connection, labels: Iterable[Label]) -> None:
    """Insert or replace labels, inside the caller's transaction."""
    conn.executemany(
        f"INSERT OR REPLACE INTO labels ({_COLUMNS}) VALUES ({', '.join('?' * 13)})",
        [label.to_row() for label in labels],
    )


def label_of(conn: sqlite3.Connection, alert_id: str) -> Label | None:
    """The label of one alert, if it has one."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM labels WHERE alert_id = ?", (alert_id,)).fetchone()
    return None if row is None else Label.from_row(row)


def read_labels(path: Path) -> list[Label]:
    """Every label saved in an ``alerts.db``, oldest verdict first (read-only; [] if none)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM labels ORDER BY at, alert_id").fetchall()
    except sqlite3.OperationalError:  # a data dir from before labels existed
        return []
    finally:
        conn.close()
    return [Label.from_row(row) for row in rows]
