"""The batch step of ingest: decode many messages, score them, commit them once.

The subscriber hands over the messages it holds unacked; `IngestPipeline.prepare` decodes
them and runs the processors (scoring and alerting) exactly once, and `commit` makes readings,
derived points and dead letters durable. Only after `commit` returns may the messages be acked.
A `commit` that raises `StoreError` can be retried with the same prepared batch: processors do
not run again, and dead letters already stored are not stored twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.base import Batch, Point, Processor, Store
from ingest.deadletters import DeadLetter, DeadLetters
from ingest.decode import Decoder
from ingest.errors import Reason, RejectedMessage, StoreError
from ingest.logthrottle import ThrottledLog
from ingest.metrics import IngestMetrics
from ingest.sequence import GapTracker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Message:
    """One MQTT message as received; `mid`, `qos` and `session` are what its ack needs."""

    topic: str
    payload: bytes
    arrival_ns: int
    mid: int = 0
    qos: int = 1
    session: int = 0


@dataclass(slots=True)
class PreparedBatch:
    """Messages decoded and scored, waiting to be committed."""

    messages: list[Message]
    batch: Batch
    letters: list[DeadLetter]
    letters_stored: bool = False


class IngestPipeline:
    """Decodes, processes and durably commits batches of messages.

    Parameters
    ----------
    decoder
        Payload contract.
    store
        Embedded store or InfluxDB spool.
    deadletters
        Where rejected messages are kept.
    metrics
        Counters and histograms.
    processors
        The scoring/alerting hook, run in order on each batch's readings.
    on_rejected
        Called with each dead letter once it is stored (e.g. to republish it).
    """

    def __init__(
        self,
        decoder: Decoder,
        store: Store,
        deadletters: DeadLetters,
        metrics: IngestMetrics,
        processors: Sequence[Processor] = (),
        on_rejected: Callable[[DeadLetter], None] | None = None,
    ) -> None:
        self.decoder = decoder
        self.store = store
        self.deadletters = deadletters
        self.metrics = metrics
        self.processors = tuple(processors)
        self.on_rejected = on_rejected
        self.gaps = GapTracker()
        self._ticked: list[Point] = []
        self._log = ThrottledLog(log, interval=10.0)

    def prepare(self, messages: list[Message]) -> PreparedBatch:
        """Decode every message and run the processors once over the accepted readings."""
        batch = Batch()
        letters: list[DeadLetter] = []
        decode = self.decoder.decode
        readings = batch.readings
        for m in messages:
            try:
                readings.extend(decode(m.topic, m.payload, m.arrival_ns))
            except RejectedMessage as exc:
                # An oversize payload is kept only up to the limit: garbage cannot fill the disk.
                kept = m.payload[: self.decoder.max_payload]
                letters.append(DeadLetter(m.arrival_ns, m.topic, exc.reason, exc.detail, kept))
            except Exception as exc:  # a decoder bug must not stop the pipeline: keep the bytes
                log.exception("decoding a message on %s failed", m.topic)
                detail = f"decoder failed: {type(exc).__name__}: {exc}"
                letters.append(
                    DeadLetter(m.arrival_ns, m.topic, Reason.INTERNAL_ERROR, detail, m.payload)
                )
        for processor in self.processors:
            try:
                batch.points.extend(processor.process(readings, batch.points))
            except Exception:  # readings are stored unscored rather than not at all
                self.metrics.processor_errors.inc()
                self._log.error(
                    f"processor {type(processor).__name__}",
                    "%s failed on a batch of %d readings; stored unscored",
                    type(processor).__name__,
                    len(readings),
                    exc_info=True,
                )
        for site, asset, missing, seq in self.gaps.observe(readings):
            self.metrics.sequence_gaps.inc(missing)
            self._log.warning(
                f"gap {site}/{asset}",
                "%s/%s: %d readings missing before seq %d",
                site,
                asset,
                missing,
                seq,
            )
        self.metrics.messages_received.inc(len(messages))
        for letter in letters:
            self.metrics.messages_rejected.labels(letter.reason.value).inc()
            self._log.warning(
                letter.reason.value,
                "rejected message on %s: %s: %s",
                letter.topic,
                letter.reason.value,
                letter.detail,
            )
        return PreparedBatch(messages, batch, letters)

    def tick(self) -> None:
        """Let the processors act on passing time, and store the points they return.

        Points the store refuses now are kept and go with the next tick's write.
        """
        for processor in self.processors:
            try:
                self._ticked.extend(processor.tick())
            except Exception:
                self.metrics.processor_errors.inc()
                self._log.error(
                    f"tick {type(processor).__name__}",
                    "%s failed on a tick",
                    type(processor).__name__,
                    exc_info=True,
                )
        if self._ticked:
            try:
                self.store.write(Batch(points=self._ticked))
            except StoreError as exc:
                self._log.warning(
                    "tick-store", "storing %d points failed: %s", len(self._ticked), exc
                )
                return
            self._ticked = []
        self._committed()

    def _committed(self) -> None:
        for processor in self.processors:
            try:
                processor.committed()
            except Exception:  # the readings are stored; a processor's own save may retry
                self.metrics.processor_errors.inc()
                self._log.error(
                    f"committed {type(processor).__name__}",
                    "%s failed after a commit",
                    type(processor).__name__,
                    exc_info=True,
                )

    def commit(self, prepared: PreparedBatch) -> None:
        """Make the batch durable; raise `StoreError` (retry later) having acked nothing."""
        started = time.perf_counter()
        if prepared.letters and not prepared.letters_stored:
            self.deadletters.add(prepared.letters)
            prepared.letters_stored = True
        if len(prepared.batch):
            self.store.write(prepared.batch)
        self.metrics.store_write_seconds.observe(time.perf_counter() - started)
        self.metrics.readings_accepted.inc(len(prepared.batch.readings))
        self._committed()
        if self.on_rejected is not None:
            for letter in prepared.letters:
                self.on_rejected(letter)
