"""`ingest.holding.HeldBatch`: a batch the store refuses for now is held unacked and retried."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from ingest.errors import StoreError
from ingest.holding import HeldBatch
from ingest.logthrottle import ThrottledLog
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message


@dataclass
class _Batch:
    messages: list[Message]


@dataclass
class _Store:
    """A sink whose store refuses the next `refusals` commits (retryable unless `for_good`)."""

    refusals: int = 0
    for_good: bool = False
    committed: list[_Batch] = field(default_factory=list)
    metrics: IngestMetrics = field(default_factory=IngestMetrics)
    on_rejected: None = None

    def prepare(self, messages: list[Message]) -> _Batch:
        return _Batch(messages)

    def commit(self, prepared: _Batch) -> None:
        if self.refusals:
            self.refusals -= 1
            raise StoreError("store down", retryable=not self.for_good)
        self.committed.append(prepared)

    def tick(self) -> None:
        pass


class _Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _hold(store: _Store, acked: list[Message], clock: _Clock) -> HeldBatch:
    return HeldBatch(store, acked.extend, ThrottledLog(logging.getLogger("test"), 1.0), clock)


def _batch() -> _Batch:
    return _Batch([Message("plant/s/a/telemetry", b"{}", 0, mid=1)])


def test_a_committed_batch_is_acked() -> None:
    store, acked, clock = _Store(), list[Message](), _Clock()
    _hold(store, acked, clock).commit(_batch())
    assert len(store.committed) == 1
    assert len(acked) == 1


def test_a_refused_batch_is_held_unacked_until_the_store_takes_it() -> None:
    store, acked, clock = _Store(refusals=2), list[Message](), _Clock()
    hold = _hold(store, acked, clock)
    hold.commit(_batch())
    assert hold.batch is not None and not acked
    assert store.metrics.backpressure._value.get() == 1
    hold.retry()  # the backoff has not passed: not tried again
    assert store.refusals == 1
    clock.now += 10
    hold.retry()  # refused again, still held
    assert hold.batch is not None and not acked
    clock.now += 10
    hold.retry()
    assert hold.batch is None
    assert len(acked) == 1
    assert store.metrics.backpressure._value.get() == 0


def test_a_forced_retry_does_not_wait_for_the_backoff() -> None:
    store, acked, clock = _Store(refusals=1), list[Message](), _Clock()
    hold = _hold(store, acked, clock)
    hold.commit(_batch())
    assert hold.wait() > 0
    hold.retry(force=True)
    assert hold.batch is None and len(acked) == 1


def test_a_refusal_for_good_is_raised_and_nothing_acked() -> None:
    store, acked, clock = _Store(refusals=1, for_good=True), list[Message](), _Clock()
    with pytest.raises(StoreError):
        _hold(store, acked, clock).commit(_batch())
    assert not acked


def test_a_dropped_batch_is_forgotten_unacked() -> None:
    store, acked, clock = _Store(refusals=1), list[Message](), _Clock()
    hold = _hold(store, acked, clock)
    hold.commit(_batch())
    hold.drop()
    assert hold.batch is None and hold.wait() == 0.0 and not acked
