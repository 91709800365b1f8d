"""A batch the store refuses for now: held unacked and retried, for every source.

Both sources (the MQTT subscriber, the RabbitMQ partitions) commit a batch, then ack its
messages. When the store refuses with a retryable `ingest.errors.StoreError`, the batch is
kept here, its messages unacked, and committed again after a growing backoff; the source
reads nothing new meanwhile (back-pressure), and acks only once the store took it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.backoff import backoff
from ingest.errors import StoreError
from ingest.logthrottle import ThrottledLog
from ingest.pipeline import Message

if TYPE_CHECKING:
    from ingest.subscriber import BatchSink, Prepared

log = logging.getLogger(__name__)

# Delay bounds (s) between commit retries while the store refuses writes.
_RETRY_COMMIT = (0.1, 5.0)


class HeldBatch:
    """Commits a source's batches and acks them; holds one the store refuses for now.

    Parameters
    ----------
    pipeline
        The sink that commits (`ingest.subscriber.BatchSink`); its metrics show the hold.
    ack
        Acks a committed batch's messages to the broker that delivered them.
    log
        The source's throttled log.
    clock
        Monotonic seconds (the tests' clock).
    """

    def __init__(
        self,
        pipeline: BatchSink[Any],
        ack: Callable[[list[Message]], None],
        log: ThrottledLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.batch: Prepared | None = None
        self.retry_at = 0.0
        self._ack = ack
        self._log = log
        self._clock = clock
        self._failures = 0

    def commit(self, prepared: Prepared) -> None:
        """Commit and ack `prepared`; hold it when the store refuses for now.

        A refusal for good (`StoreError.retryable` false) is raised: the run ends.
        """
        metrics = self.pipeline.metrics
        try:
            self.pipeline.commit(prepared)
        except StoreError as exc:
            if not exc.retryable:
                raise
            self.batch = prepared
            self._failures += 1
            self.retry_at = self._clock() + backoff(self._failures, *_RETRY_COMMIT)
            metrics.store_errors.inc()
            metrics.backpressure.set(1)
            self._log.warning(
                "commit", "holding %d messages unacked: %s", len(prepared.messages), exc
            )
            return
        if self.batch is not None:
            log.info("store accepts writes again; acking %d held messages", len(prepared.messages))
            self.drop()
        self._ack(prepared.messages)

    def retry(self, *, force: bool = False) -> None:
        """Commit the held batch again, once its backoff passed (at once when `force`)."""
        if self.batch is not None and (force or self._clock() >= self.retry_at):
            self.commit(self.batch)

    def wait(self) -> float:
        """Seconds until the held batch is due again (0 when it is, or none is held)."""
        return max(0.0, self.retry_at - self._clock()) if self.batch is not None else 0.0

    def drop(self) -> None:
        """Forget the held batch (committed, or its messages come again from the broker)."""
        self.batch = None
        self._failures = 0
        self.pipeline.metrics.backpressure.set(0)
