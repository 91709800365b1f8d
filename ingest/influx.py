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

from ingest.backoff import backoff
from ingest.base import Batch
from ingest.errors import StoreError
from ingest.lineprotocol import batch_lines
from ingest.logthrottle import ThrottledLog
from ingest.metrics import IngestMetrics
from ingest.spool import Spool

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
        """Append the batch to the spool (durable on return), and wake the flusher."""
        self.spool.append(batch_lines(batch).encode(), len(batch))
        self._wake.set()

    def _drain(self) -> None:
        failures = 0
        while not self._stop.is_set():
            chunks = self.spool.oldest(self._batch_lines)
            if not chunks:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            lines = sum(c.lines for c in chunks)
            try:
                self._writer.write(b"\n".join(c.body for c in chunks))
            except StoreError as exc:
                self._metrics.influx_write_errors.labels(str(exc.retryable).lower()).inc()
                if not exc.retryable:
                    log.error(
                        "InfluxDB refused %d lines, kept in the spool's rejected table: %s",
                        lines,
                        exc,
                    )
                    self.spool.reject(chunks, str(exc))
                    continue
                failures += 1
                delay = max(backoff(failures, *self._backoff), exc.retry_after)
                self._log.warning(
                    "influx",
                    "%s; %d lines spooled, retrying in %.1f s",
                    exc,
                    self.spool.depth_lines,
                    delay,
                )
                self._stop.wait(delay)
                continue
            if failures:
                log.info(
                    "InfluxDB is taking writes again; %d lines spooled", self.spool.depth_lines
                )
            failures = 0
            self.spool.remove(chunks)
            self._metrics.influx_lines_written.inc(lines)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the flusher (it finishes the write in hand) and close the spool."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.spool.close()
        self._writer.close()
