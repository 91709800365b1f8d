"""meshwatch's embedded SQLite store, read from outside while and after it drains.

`poll_rows` times the drain: ``SELECT count(*) FROM telemetry`` every 50 ms through a
separate read-only connection, which works because meshwatch keeps the database in WAL mode.
`verify_store` checks afterwards that the store holds exactly what was published.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from .workloads import BASE_MS, KIND, Workload, expected_per_asset, metrics_for

if TYPE_CHECKING:
    from .base import Drain

POLL_INTERVAL_S = 0.05
#: A drain that makes no progress for this long is reported as a hang.
STALL_S = 30.0
#: How many stored rows are compared field by field with what was published.
FIELD_SAMPLE = 500
#: meshwatch stores ``ts`` in nanoseconds; the workloads are in milliseconds.
_NS_PER_MS = 1_000_000


def _read_only(db: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """Open ``db`` read-only, so that the benchmark can never write to meshwatch's store."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout)


@dataclass
class Seen:
    """What polling the store saw: when rows first appeared and when the count was reached.

    Attributes
    ----------
    count : int
        Rows seen by the last poll.
    first : tuple of (float, int) or None
        ``time.monotonic()`` and row count of the first poll that saw rows.
    done : float or None
        ``time.monotonic()`` of the poll that saw every expected row; None if none did.
    why : str
        Why polling stopped early (crash, hang); empty when it finished.
    """

    count: int = 0
    first: tuple[float, int] | None = None
    done: float | None = None
    why: str = ""

    def fill(self, drain: Drain, started: float, expected: int) -> bool:
        """Fill ``drain``'s times from what was seen since ``started``; False if unfinished.

        An unfinished drain gets its status (why polling stopped, rows seen of ``expected``).
        """
        if self.done is None:
            drain.status = f"{self.why}: {self.count:,} of {expected:,} rows"
            return False
        drain.total_s = self.done - started
        if self.first is not None:
            t_first, c_first = self.first
            drain.steady_s = self.done - t_first
            drain.steady_readings = expected - c_first
        return True


def poll_rows(proc: subprocess.Popen[bytes], db: Path, expected: int, polls: list[float]) -> Seen:
    """Poll the row count every 50 ms until it reaches ``expected``, crashes or stalls.

    Parameters
    ----------
    proc : subprocess.Popen
        The ``meshwatch run`` process writing the store; polling stops if it exits.
    db : Path
        Its store; polling waits for the file and the table to appear.
    expected : int
        Rows that make the drain complete.
    polls : list of float
        Each query's duration in seconds is appended here.

    Returns
    -------
    Seen
        What the polls saw.
    """
    seen = Seen()
    conn: sqlite3.Connection | None = None
    last_change = time.monotonic()
    next_poll = time.monotonic()
    try:
        while True:
            next_poll += POLL_INTERVAL_S
            pause = next_poll - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if proc.poll() is not None:
                seen.why = f"meshwatch run exited (code {proc.returncode})"
                return seen
            if conn is None:
                if not db.exists():
                    continue
                conn = _read_only(db)
            t0 = time.monotonic()
            try:
                (n,) = conn.execute("SELECT count(*) FROM telemetry").fetchone()
            except sqlite3.OperationalError:
                continue  # not created yet
            now = time.monotonic()
            polls.append(now - t0)
            if n != seen.count:
                seen.count = int(n)
                last_change = now
                if seen.first is None and seen.count > 0:
                    seen.first = (now, seen.count)
            if seen.count >= expected:
                seen.done = now
                return seen
            if now - last_change > STALL_S:
                seen.why = f"no progress for {STALL_S:g} s (hang)"
                return seen
    finally:
        if conn is not None:
            conn.close()


def verify_store(db: Path, deadletters: Path, workload: Workload) -> list[str]:
    """Check that the store holds exactly the published readings, once each.

    Parameters
    ----------
    db : Path
        meshwatch's embedded store.
    deadletters : Path
        meshwatch's dead-letter store.
    workload : Workload
        What was published.

    Returns
    -------
    list of str
        One line per problem found; empty if the store is exactly right.
    """
    problems: list[str] = []
    expected = workload.readings
    conn = _read_only(db)
    try:
        rows, distinct, lo, hi = conn.execute(
            "SELECT count(*), count(DISTINCT ts), min(ts), max(ts) FROM telemetry"
        ).fetchone()
        if rows != expected:
            problems.append(f"{rows:,} rows stored, {expected:,} readings published")
        if distinct != rows:
            problems.append(f"{rows - distinct:,} duplicate timestamps")
        want_lo, want_hi = BASE_MS * _NS_PER_MS, (BASE_MS + expected - 1) * _NS_PER_MS
        if (lo, hi) != (want_lo, want_hi):
            problems.append(f"ts range {lo}..{hi}, expected {want_lo}..{want_hi}")
        per_asset = {
            (site, asset): n
            for site, asset, n in conn.execute(
                "SELECT site, asset, count(*) FROM telemetry GROUP BY site, asset"
            )
        }
        if per_asset != expected_per_asset(workload):
            problems.append("readings per (site, asset) differ from what was published")
        (wrong_kind,) = conn.execute(
            "SELECT count(*) FROM telemetry WHERE kind != ?", (KIND,)
        ).fetchone()
        if wrong_kind:
            problems.append(f"{wrong_kind:,} rows with a kind other than {KIND}")
        step = max(1, expected // FIELD_SAMPLE)
        for r in range(0, expected, step):
            ts = (BASE_MS + r) * _NS_PER_MS
            row = conn.execute("SELECT fields FROM telemetry WHERE ts = ?", (ts,)).fetchone()
            if row is None or orjson.loads(row[0]) != metrics_for(r):
                problems.append(f"reading {r} (ts {ts}) stored as {row!r}")
                break
    finally:
        conn.close()
    if deadletters.exists():
        dl = _read_only(deadletters)
        try:
            (letters,) = dl.execute("SELECT count(*) FROM deadletters").fetchone()
        finally:
            dl.close()
        if letters:
            problems.append(f"{letters:,} dead letters")
    return problems
