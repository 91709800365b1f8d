"""The courier: one worker thread per receiver delivers the outbox, in order, with retries.

Each worker delivers its receiver's rows strictly oldest first, and a failing head row holds
back that receiver's later rows (never another receiver's). Retryable failures are retried
forever with exponential backoff whose state is on disk, so an hour-long outage or a restart
loses nothing; a refusal that no retry can fix moves the row to ``undeliverable``.

Delivery is at least once: a crash (or a failed write of the outcome) after a receiver took a
notification but before its row was deleted sends it again on the next attempt, under the
same `Notification.id`, by which a far end can deduplicate.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from alerts.base import Receiver
from alerts.errors import DeliveryError
from alerts.metrics import AlertMetrics
from alerts.outbox import UNREADABLE, create_tables, decode
from common.backoff import backoff
from ingest.logthrottle import ThrottledLog
from ingest.sqlite import connect, transaction

log = logging.getLogger(__name__)

# One log line per receiver per minute while it keeps failing: an endpoint down for an hour
# logs 60 lines, each saying how many were held back, instead of one per retry.
_LOG_INTERVAL = 60.0

# Errors are stored for the operator; an HTML error page of megabytes tells no more than its
# first kilobyte, and would bloat every retry's UPDATE.
_MAX_ERROR_CHARS = 1000


class Courier:
    """Delivers the outbox: one worker thread per receiver, in order, retrying with backoff.

    Each worker takes its receiver's oldest row and calls ``notify`` outside any transaction.
    Success deletes the row. A retryable `DeliveryError`, or any other exception (a bug in a
    receiver), keeps the row at the head and schedules the next attempt after
    ``max(retry_after, backoff(attempts))``; retries go on for ever. A non-retryable
    `DeliveryError` moves the row to ``undeliverable`` and the next row goes out. Rows of
    receivers that are not configured stay in the outbox, untouched, until one of that name is.

    Parameters
    ----------
    path
        The alert engine's SQLite file (``<data_dir>/alerts.db``).
    receivers
        Receivers by name (the name notifications carry); the caller closes them.
    metrics
        ``notifications`` outcomes delivered, retried and failed (queued is counted where
        notifications are made, by the dispatcher), and ``outbox_depth``: rows waiting,
        counted from disk at start and kept up to date in memory.
    retry_min, retry_max
        Bounds of the backoff between attempts, in seconds; ``retry_max`` also caps the wait
        left from a previous run.
    clock
        Wall-clock seconds; retry times are stored on disk, so they must mean the same after a
        restart (a monotonic clock would not).
    poll
        Most seconds an idle worker sleeps before looking again, which picks up rows another
        process committed without a `poke`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ingest.sqlite import transaction
    >>> class Collector:
    ...     name, delivered = "ops", []
    ...     def notify(self, notification): self.delivered.append(notification.id)
    ...     def close(self): pass
    >>> from alerts.base import Notification
    >>> from alerts.outbox import Outbox, enqueue
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "alerts.db"
    >>> ops = Collector()
    >>> courier = Courier(path, {"ops": ops}, AlertMetrics())
    >>> conn = connect(path)
    >>> create_tables(conn)
    >>> with transaction(conn, "alert state"):
    ...     enqueue(conn, [Notification("ops", {}, [], id="n1")], now=time.time())
    >>> courier.start()
    >>> courier.poke()
    >>> outbox = Outbox(path)
    >>> while outbox.depth():
    ...     time.sleep(0.01)
    >>> ops.delivered
    ['n1']
    >>> courier.close(); outbox.close(); conn.close()
    """

    def __init__(
        self,
        path: Path,
        receivers: Mapping[str, Receiver],
        metrics: AlertMetrics,
        *,
        retry_min: float = 1.0,
        retry_max: float = 300.0,
        clock: Callable[[], float] = time.time,
        poll: float = 1.0,
    ) -> None:
        if not 0 < retry_min <= retry_max:
            raise ValueError(
                f"retry_min ({retry_min}) must be above 0 and at most retry_max ({retry_max})"
            )
        self.path = path
        self._receivers = dict(receivers)
        self._metrics = metrics
        self._retry = (retry_min, retry_max)
        self._clock = clock
        self._poll = poll
        self._stop = threading.Event()
        self._log = ThrottledLog(log, interval=_LOG_INTERVAL)
        self._workers: tuple[_Worker, ...] = ()

    def start(self) -> None:
        """Count what waits, warn of unknown receivers, and start one worker per receiver.

        Waits left by a previous run are cut to at most ``retry_max`` from now, so a clock
        that jumped or a smaller ``retry_max`` cannot park a receiver for longer.
        """
        if self._workers:
            raise RuntimeError(f"Courier on {self.path} is already started")
        conn = connect(self.path)
        try:
            create_tables(conn)
            latest = self._clock() + self._retry[1]
            with transaction(conn, f"outbox {self.path}"):
                conn.execute("UPDATE outbox SET next_at = ? WHERE next_at > ?", (latest, latest))
            # One statement, so counts and the highest id come from one snapshot.
            counts = {
                receiver: (count, top)
                for receiver, count, top in conn.execute(
                    "SELECT receiver, count(*), max(id) FROM outbox GROUP BY receiver"
                )
            }
        finally:
            conn.close()
        seen = max((top for _, top in counts.values()), default=0)
        for receiver, (count, _) in sorted(counts.items()):
            if receiver not in self._receivers:
                log.warning(
                    "outbox holds %d notifications for receiver %r, which is not configured; "
                    "they stay queued until a receiver of that name is",
                    count,
                    receiver,
                )
                self._metrics.outbox_depth.labels(receiver).set(count)
        self._workers = tuple(
            _Worker(self, name, receiver, depth=counts.get(name, (0, 0))[0], seen=seen)
            for name, receiver in self._receivers.items()
        )
        for worker in self._workers:
            worker.thread.start()

    def poke(self) -> None:
        """Wake every worker: new rows were committed (cheap, never blocks)."""
        for worker in self._workers:
            worker.wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers after their current attempt; undelivered rows stay on disk.

        A worker inside a slow ``notify`` is not interrupted: it finishes that attempt (the
        receiver's own timeout bounds it), records the outcome and exits, after this returns
        if `timeout` runs out first (a warning says so). Workers are daemon threads, so one
        still in ``notify`` does not hold up the interpreter's exit; its row is retried next
        run. Receivers are not closed here: whoever built them closes them.
        """
        self._stop.set()
        self.poke()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                log.warning(
                    "receiver %r is still delivering at shutdown; its outcome is recorded "
                    "when it returns, or the notification is retried on the next start",
                    worker.name,
                )


class _Worker:
    """Delivers one receiver's rows, oldest first, in its own thread with its own connection.

    `depth` is the receiver's row count, kept in memory: rows above `seen` (the highest id
    counted) are counted as they appear, delivered and given-up rows are subtracted.
    """

    def __init__(
        self, courier: Courier, name: str, receiver: Receiver, *, depth: int, seen: int
    ) -> None:
        self.name = name
        self.receiver = receiver
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"outbox-{name}", daemon=True)
        self._courier = courier
        self._metrics = courier._metrics
        self._depth = depth
        self._seen = seen
        self._failures = 0  # attempts of the current head that failed, for the recovery log
        self._metrics.outbox_depth.labels(name).set(depth)

    def _run(self) -> None:
        """The worker thread: deliver until stopped; it never dies of an error."""
        courier = self._courier
        conn = connect(courier.path)
        # A delivered row's DELETE need not reach the disk at once: lost in a power cut, it
        # only makes the notification go out again, under the same id (at least once).
        # Half of a delivery's time was this fsync.
        conn.execute("PRAGMA synchronous=NORMAL")
        trouble = 0
        try:
            while not courier._stop.is_set():
                # Cleared before looking, so a poke for a commit after the look is not lost.
                self.wake.clear()
                try:
                    delay = self._step(conn)
                    trouble = 0
                except Exception:  # disk full, a locked file: keep the row and try again
                    trouble += 1
                    delay = backoff(trouble, *courier._retry)
                    courier._log.error(
                        f"outbox:{self.name}",
                        "outbox of receiver %r failed; retrying in %.1f s",
                        self.name,
                        delay,
                        exc_info=True,
                    )
                if delay > 0:
                    self.wake.wait(delay)
        finally:
            conn.close()

    def _step(self, conn: sqlite3.Connection) -> float:
        """Count new rows, then deliver the head if it is due; return how long to sleep."""
        courier = self._courier
        self._count_new(conn)
        head = conn.execute(
            "SELECT id, body, attempts, next_at FROM outbox WHERE receiver = ? ORDER BY id LIMIT 1",
            (self.name,),
        ).fetchone()
        if head is None:
            return courier._poll
        row_id, body, attempts, next_at = head
        wait = float(next_at) - courier._clock()
        if wait > 0:
            return min(wait, courier._poll)
        self._attempt(conn, row_id, body, attempts)
        return 0.0

    def _count_new(self, conn: sqlite3.Connection) -> None:
        """Add rows committed since the last look to the depth.

        SQLite has one writer at a time, so ids become visible in increasing order.
        """
        count, top = conn.execute(
            "SELECT count(*), max(id) FROM outbox WHERE receiver = ? AND id > ?",
            (self.name, self._seen),
        ).fetchone()
        if count:
            self._seen = top
            self._depth += count
            self._metrics.outbox_depth.labels(self.name).set(self._depth)

    def _attempt(self, conn: sqlite3.Connection, row_id: int, body: bytes, attempts: int) -> None:
        """Deliver one row and record the outcome."""
        try:
            notification = decode(body)
        except UNREADABLE as exc:
            self._give_up(conn, row_id, attempts, f"stored notification cannot be read: {exc!r}")
            return
        try:
            self.receiver.notify(notification)
        except DeliveryError as exc:
            if exc.retryable:
                self._retry(conn, row_id, attempts + 1, str(exc), exc.retry_after)
            else:
                self._give_up(conn, row_id, attempts + 1, str(exc))
            return
        except Exception as exc:  # a receiver bug: its traceback is logged, the row is kept
            self._courier._log.error(
                f"crash:{self.name}",
                "receiver %r raised an unexpected error; treated as retryable",
                self.name,
                exc_info=True,
            )
            self._retry(conn, row_id, attempts + 1, repr(exc), None)
            return
        conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        self._removed("delivered")
        if self._failures:
            log.info(
                "receiver %r delivers again, after %d failed attempts", self.name, self._failures
            )
            self._failures = 0

    def _retry(
        self,
        conn: sqlite3.Connection,
        row_id: int,
        attempts: int,
        error: str,
        retry_after: float | None,
    ) -> None:
        """Keep the row at the head and schedule its next attempt (on disk)."""
        courier = self._courier
        delay = max(retry_after or 0.0, backoff(attempts, *courier._retry))
        conn.execute(
            "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
            (attempts, courier._clock() + delay, error[:_MAX_ERROR_CHARS], row_id),
        )
        self._failures += 1
        self._metrics.notifications.labels(self.name, "retried").inc()
        courier._log.warning(
            f"retry:{self.name}",
            "receiver %r failed (attempt %d), retrying in %.1f s with %d notifications waiting: %s",
            self.name,
            attempts,
            delay,
            self._depth,
            error,
        )

    def _give_up(self, conn: sqlite3.Connection, row_id: int, attempts: int, error: str) -> None:
        """Move the row to ``undeliverable`` in one transaction; the next row goes next."""
        courier = self._courier
        with transaction(conn, f"outbox {courier.path}"):
            conn.execute(
                "INSERT INTO undeliverable "
                "(id, receiver, body, created, attempts, error, failed_at) "
                "SELECT id, receiver, body, created, ?, ?, ? FROM outbox WHERE id = ?",
                (attempts, error[:_MAX_ERROR_CHARS], courier._clock(), row_id),
            )
            conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        self._failures = 0
        self._removed("failed")
        courier._log.error(
            f"failed:{self.name}",
            "receiver %r refused notification %d for good (kept in %s, table undeliverable): %s",
            self.name,
            row_id,
            courier.path,
            error,
        )

    def _removed(self, outcome: str) -> None:
        """One row left the outbox with `outcome` (delivered or failed)."""
        self._depth -= 1
        self._metrics.notifications.labels(self.name, outcome).inc()
        self._metrics.outbox_depth.labels(self.name).set(self._depth)
