"""The reader's fan-out to workers and the workers' hand-off (``meshwatch run --workers``).

Real pipes and real pipelines on real SQLite stores; each worker runs in a thread here
(`meshwatch.workers` runs them as processes: tests/meshwatch/test_workers.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from ingest.base import Batch
from ingest.deadletters import DeadLetter, DeadLetters
from ingest.decode import Decoder
from ingest.embedded import EmbeddedStore
from ingest.errors import StoreError
from ingest.fanout import FanOut
from ingest.handoff import READY, Handoff
from ingest.metrics import IngestMetrics
from ingest.partition import owner
from ingest.pipeline import IngestPipeline, Message
from ingest.topic import TopicTemplate

TEMPLATE = TopicTemplate.parse("plant/{site}/{asset}/telemetry")
NOW = 1_767_225_600 * 10**9


class RefusingStore(EmbeddedStore):
    """An embedded store that refuses its first `failures` writes (a full disk, say)."""

    failures = 0
    for_good = False

    def write(self, batch: Batch) -> None:
        if self.for_good:
            raise StoreError("database disk image is malformed", retryable=False)
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full")
        super().write(batch)


class ThreadWorker:
    """A worker on one end of a real pipe, its pipeline built and run in its own thread."""

    def __init__(
        self, index: int, data_dir: Path, *, refusals: int = 0, dies: int = 0, broken: bool = False
    ) -> None:
        self.index = index
        self.broken = broken
        self.db = data_dir / f"worker-{index}.db"
        self.data_dir = data_dir
        self.refusals = refusals
        self.dies = dies  # how many of its starts die holding their first slice
        self.starts = 0
        self.conn: Connection
        self.thread: threading.Thread
        self._start()

    def _start(self) -> None:
        self.conn, theirs = Pipe()
        self.starts += 1
        dying = self.starts <= self.dies
        self.thread = threading.Thread(target=self._serve, args=(theirs, dying), daemon=True)
        self.thread.start()
        assert self.conn.recv_bytes() == READY  # as `meshwatch.workers.WorkerProcess.ready`

    def _serve(self, pipe: Connection, dying: bool) -> None:
        if dying:
            pipe.send_bytes(READY)
            pipe.recv_bytes()
            pipe.close()
            return
        store = RefusingStore(self.db)
        store.failures = self.refusals
        store.for_good = self.broken
        letters = DeadLetters(self.data_dir / f"letters-{self.index}.db")
        pipeline = IngestPipeline(Decoder(TEMPLATE), store, letters, IngestMetrics())
        try:
            Handoff(pipe, pipeline).run(threading.Event())
        except StoreError:
            pass  # a refusal for good ends the worker (the reader was told)
        finally:
            store.close()
            letters.close()

    def send(self, frame: bytes) -> None:
        self.conn.send_bytes(frame)

    def poll(self, timeout: float) -> bool:
        return self.conn.poll(timeout)

    def recv(self) -> bytes:
        try:
            return self.conn.recv_bytes()
        except OSError as exc:  # died with a frame unread: reset, as `WorkerProcess` says
            raise EOFError(str(exc)) from exc

    def alive(self) -> bool:
        return self.thread.is_alive()

    def restart(self) -> None:
        self.conn.close()
        self._start()

    def assets(self) -> list[tuple[str, str]]:
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute("SELECT site, asset FROM telemetry ORDER BY ts").fetchall()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., list[ThreadWorker]]]:
    made: list[ThreadWorker] = []

    def make(count: int = 2, **options: int) -> list[ThreadWorker]:
        made.extend(ThreadWorker(k, tmp_path, **options) for k in range(count))
        return made

    yield make
    for w in made:  # closing the reader's end stops each worker, as in production
        w.conn.close()
        w.thread.join(10)


def _messages(count: int, assets: int = 20) -> list[Message]:
    return [
        Message(
            f"plant/s{n % 3}/a{n % assets}/telemetry",
            b'{"ts": %d, "metrics": {"t": 1.5}}' % (1_767_225_600_000 + n),
            NOW,
            mid=n + 1,
        )
        for n in range(count)
    ]


def test_each_message_goes_to_the_worker_that_owns_its_asset(workers) -> None:
    """Commit returns once both workers stored their share, and each has only its own."""
    links = workers(2)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    fanout.commit(fanout.prepare(_messages(200)))
    for w in links:
        held = w.assets()
        assert held and all(owner(site, asset, 2) == w.index for site, asset in held)
    assert sum(len(w.assets()) for w in links) == 200


def test_a_worker_whose_store_refuses_holds_the_batch_until_it_accepts(workers) -> None:
    """A refusing store makes commit raise a retryable error; a later commit completes."""
    links = workers(2, refusals=1)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    dispatched = fanout.prepare(_messages(100))
    with pytest.raises(StoreError, match="disk full") as refused:
        fanout.commit(dispatched)
    assert refused.value.retryable
    for _ in range(100):  # as the subscriber does: ask again after a pause
        time.sleep(0.1)
        try:
            fanout.commit(dispatched)
            break
        except StoreError:
            continue
    assert not dispatched.waiting  # the workers retried on their own and committed
    assert sum(len(w.assets()) for w in links) == 100


def test_a_worker_that_dies_holding_its_slice_is_started_again_and_sent_it(workers) -> None:
    """Nothing of the batch is lost, and nothing stored twice."""
    links = workers(2, dies=1)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    fanout.commit(fanout.prepare(_messages(100)))
    assert [w.starts for w in links] == [2, 2]
    assert sum(len(w.assets()) for w in links) == 100


def test_the_next_batch_goes_out_before_the_last_is_committed(workers) -> None:
    """Two batches out at once: each committed in turn, every message stored once."""
    links = workers(2)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    messages = _messages(200)
    first, second = fanout.prepare(messages[:100]), fanout.prepare(messages[100:])
    fanout.commit(first)
    fanout.commit(second)
    assert not first.waiting and not second.waiting
    assert sum(len(w.assets()) for w in links) == 200


def test_a_worker_that_dies_with_two_batches_out_is_sent_both_again_in_order(workers) -> None:
    """Its slices of both batches come again, the older first: nothing lost, none twice."""
    links = workers(2, dies=1)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    messages = _messages(200)
    first, second = fanout.prepare(messages[:100]), fanout.prepare(messages[100:])
    fanout.commit(first)
    fanout.commit(second)
    assert [w.starts for w in links] == [2, 2]
    stored = [pair for w in links for pair in w.assets()]
    assert len(stored) == 200
    for w in links:  # each worker stored its share in the order the batches had it
        assert w.assets() == [
            (m.topic.split("/")[1], m.topic.split("/")[2])
            for m in messages
            if owner(m.topic.split("/")[1], m.topic.split("/")[2], 2) == w.index
        ]


def test_a_worker_that_dies_with_a_batch_out_is_sent_it_when_the_tick_starts_it(workers) -> None:
    """The idle tick that starts a dead worker again sends it its slice of the batch out."""
    links = workers(2, dies=1)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    dispatched = fanout.prepare(_messages(100))
    for w in links:  # both die holding their slice, before the subscriber commits
        w.thread.join(10)
    fanout.tick()
    committing = threading.Thread(target=fanout.commit, args=(dispatched,), daemon=True)
    committing.start()
    committing.join(20)
    assert not committing.is_alive(), "the batch waits for slices never sent again"
    assert sum(len(w.assets()) for w in links) == 100


def test_a_store_that_refuses_for_good_ends_the_run_with_nothing_acked(workers) -> None:
    """As in a single process: a non-retryable refusal is not held for ever, nor retried."""
    links = workers(2, broken=True)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    with pytest.raises(StoreError, match="malformed") as refused:
        fanout.commit(fanout.prepare(_messages(100)))
    assert not refused.value.retryable


def test_dead_letters_come_back_to_the_reader(workers) -> None:
    """The reader republishes what the workers rejected (``ingest.publish_deadletters``)."""
    links = workers(2)
    fanout = FanOut(TEMPLATE, links, IngestMetrics())
    told: list[DeadLetter] = []
    fanout.on_rejected = told.append
    bad = [Message("plant/s1/a1/telemetry", b"{", NOW, mid=1), Message("nowhere", b"{}", NOW)]
    fanout.commit(fanout.prepare(bad))
    assert sorted((d.topic, d.reason.value) for d in told) == [
        ("nowhere", "bad_topic"),
        ("plant/s1/a1/telemetry", "bad_json"),
    ]
