"""InfluxDB storage: batches go to the durable spool, a flusher thread drains it.

``write`` only appends to the on-disk spool, so the pipeline acks as soon as data is on local
disk; the flusher sends the oldest lines through influxdb-client's synchronous v2 write API
in batches, retrying with exponential backoff and jitter while the server is down or busy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Protocol

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from common.backoff import backoff
from ingest.base import Batch
from ingest.errors import StoreError
from ingest.lineprotocol import batch_lines
from ingest.logthrottle import ThrottledLog
from ingest.metrics import IngestMetrics
from ingest.spool import Chunk, Spool

log = logging.getLogger(__name__)

# HTTP statuses after which the same body can succeed later (rate limits, server trouble,
# and auth/bucket errors an operator can fix without losing the spool).
_RETRYABLE = frozenset({401, 403, 404, 408, 429, 500, 502, 503, 504})


class LineWriter(Protocol):
    """Sends line protocol to a server."""

    def write(self, body: bytes) -> None:
        """Write all lines, or raise `StoreError` (with `retryable`) having written none."""

    def close(self) -> None:
        """Release the connection."""


class InfluxWriter:
    """A `LineWriter` on influxdb-client's synchronous v2 write API.

    Works with any server of the InfluxDB v2 write API (InfluxDB 2.x/3.x, VictoriaMetrics).
    """

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout: float) -> None:
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org
        self.url = url

    def write(self, body: bytes) -> None:
        """Send `body`; classify failures as retryable or not."""
        try:
            self._api.write(
                bucket=self._bucket,
                org=self._org,
                record=body,  # timestamps are ns, the API's default precision
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = (exc.body or exc.reason or "").strip()
            hint = {
                401: " (check influx.token)",
                403: " (the token may not write to this bucket)",
                404: " (check influx.org and influx.bucket)",
            }.get(status, "")
            headers: Mapping[str, str] = exc.headers or {}
            retry_after = headers.get("Retry-After", "")
            raise StoreError(
                f"InfluxDB at {self.url} answered {status}{hint}: {message[:300]}",
                retryable=status in _RETRYABLE,
                retry_after=float(retry_after) if retry_after.isdigit() else 0.0,
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreError(f"InfluxDB at {self.url} unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()  # type: ignore[no-untyped-call]


class InfluxStore:
    """A `Store` writing to InfluxDB through a durable spool.

    Parameters
    ----------
    spool
        Where batches wait; bounded, so a long outage turns into back-pressure.
    writer
        Sends line protocol (an `InfluxWriter` in production).
    metrics
        Counters of lines written and errors; spool depth gauges.
    batch_lines
        Most lines per HTTP write.
    backoff_min, backoff_max
        Bounds of the delay between failed writes, in seconds.
    """

    def __init__(
        self,
        spool: Spool,
        writer: LineWriter,
        metrics: IngestMetrics,
        *,
        batch_lines: int = 5000,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.spool = spool
        self._writer = writer
        self._metrics = metrics
        self._batch_lines = batch_lines
        self._backoff = (backoff_min, backoff_max)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._log = ThrottledLog(log, interval=10.0)
        metrics.spool_depth_lines.set_function(lambda: spool.depth_lines)
        metrics.spool_depth_bytes.set_function(lambda: spool.depth_bytes)
        self._thread = threading.Thread(target=self._drain, name="influx-flusher", daemon=True)
        self._thread.start()

    def write(self, batch: Batch) -> None:
        """Append the batch to the spool (durable on return), and wake the flusher.

        A batch larger than ``batch_lines`` is spooled as several chunks in one transaction,
        so that no single write to the server exceeds it.
        """
        lines = batch_lines(batch)
        size = self._batch_lines
        self.spool.append_many(
            [
                ("\n".join(lines[i : i + size]).encode(), len(lines[i : i + size]))
                for i in range(0, len(lines), size)
            ]
        )
        self._wake.set()

    def _drain(self) -> None:
        """The flusher thread: oldest lines first, until stopped; it never dies of an error."""
        failures = 0
        while not self._stop.is_set():
            try:
                chunks = self.spool.oldest(self._batch_lines)
                if not chunks:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self._send(chunks)
            except StoreError as exc:
                failures += 1
                delay = max(backoff(failures, *self._backoff), exc.retry_after)
                self._metrics.influx_write_errors.labels("true").inc()
                self._log.warning(
                    "influx",
                    "%s; %d lines spooled, retrying in %.1f s",
                    exc,
                    self.spool.depth_lines,
                    delay,
                )
                self._stop.wait(delay)
                continue
            except Exception:  # a bug here must not silently stop the draining
                failures += 1
                self._log.error("flusher", "spool flusher failed; retrying", exc_info=True)
                self._stop.wait(backoff(failures, *self._backoff))
                continue
            if failures:
                log.info("InfluxDB takes writes again; %d lines spooled", self.spool.depth_lines)
            failures = 0

    def _send(self, chunks: list[Chunk]) -> None:
        """Write chunks; isolate lines the server refuses, keep them aside, drop the chunks."""
        lines = sum(c.lines for c in chunks)
        try:
            self._writer.write(b"\n".join(c.body for c in chunks))
            refused: list[tuple[bytes, str]] = []
        except StoreError as exc:
            if exc.retryable:
                raise
            self._metrics.influx_write_errors.labels("false").inc()
            refused = self._isolate([line for c in chunks for line in c.body.split(b"\n")])
            log.error(
                "InfluxDB refused %d of %d lines, kept in %s (table rejected): %s",
                len(refused),
                lines,
                self.spool.path,
                refused[0][1] if refused else exc,
            )
        self.spool.remove(chunks, refused)
        self._metrics.influx_lines_written.inc(lines - len(refused))
        self._metrics.influx_lines_rejected.inc(len(refused))

    def _isolate(self, lines: list[bytes]) -> list[tuple[bytes, str]]:
        """Write halves until the refused lines stand alone; return them with their errors.

        One malformed line costs about 2·log2(n) requests instead of its whole batch. A
        retryable error on the way propagates: the chunks stay and are written again later
        (writes are idempotent).
        """
        refused: list[tuple[bytes, str]] = []
        middle = len(lines) // 2
        for half in (lines[:middle], lines[middle:]):
            if not half:
                continue
            try:
                self._writer.write(b"\n".join(half))
            except StoreError as exc:
                if exc.retryable:
                    raise
                if len(half) == 1:
                    refused.append((half[0], str(exc)))
                else:
                    refused.extend(self._isolate(half))
        return refused

    def close(self, timeout: float = 2.0) -> None:
        """Stop the flusher (it finishes the write in hand) and close the spool."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            # A write is still out; the spool keeps its chunks for the next run.
            log.warning("InfluxDB write still in progress at shutdown; it resumes next start")
            return
        self.spool.close()
        self._writer.close()
