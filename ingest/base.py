"""The values that travel through ingest, and the contracts of its pluggable parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Reading:
    """One validated reading of one asset: the `telemetry` measurement of docs/design.md §5.

    Not frozen, though nothing changes one once made: one is made per reading, and a frozen
    dataclass took 0.5 µs more to build (measured, issue 14), as `alerts.base.Observation`
    found before.

    Parameters
    ----------
    site, asset
        IDs taken from the topic.
    kind
        Asset kind from the payload, or None when the sensor did not say.
    ts
        Event time in nanoseconds since the Unix epoch.
    metrics
        Metric name to finite float.
    seq
        The sensor's sequence number, when it sends one.
    """

    site: str
    asset: str
    kind: str | None
    ts: int
    metrics: Mapping[str, float]
    seq: int | None = None


FieldValue = float | bool | str


@dataclass(slots=True)
class Point:
    """A derived fact to store beside the readings (an `anomaly` or `alert` record).

    `tags` and `fields` follow the storage schema of docs/design.md §5; `ts` is in nanoseconds.
    Not frozen, for the reason `Reading` is not: scoring makes one per reading.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: int


@dataclass(slots=True)
class Batch:
    """What one flush commits in one transaction: readings and the points derived from them."""

    readings: list[Reading] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings) + len(self.points)


class Store(Protocol):
    """Where accepted readings become durable. The pipeline acks only after `write` returns."""

    def write(self, batch: Batch) -> None:
        """Commit the whole batch durably, or raise `StoreError` having committed nothing."""

    def close(self) -> None:
        """Release files, connections and threads; pending durable data stays on disk."""


class Processor(Protocol):
    """The scoring/alerting hook: sees each batch of readings once, before it is stored.

    Points it returns are written in the same transaction as the readings, so a reading and
    its score are durable together (models and alerts plug in here). Processors run in order,
    and each sees the points the earlier ones derived from the batch (alerting reads the
    scores). After the store committed, `committed` lets them save their own state before the
    messages are acked: reading, score, then alert state, then the ack, as docs/design.md §7 orders.
    """

    def process(
        self, readings: Sequence[Reading], derived: Sequence[Point] = ()
    ) -> Sequence[Point]:
        """Return the derived points for these readings (may be empty)."""

    def tick(self) -> Sequence[Point]:
        """Time passed without a batch (called about once a second); return points to store."""

    def committed(self) -> None:
        """Every point returned so far is durable in the store; the acks come next."""

    def close(self) -> None:
        """Save what must outlive the process and release its files; no batch comes after."""
