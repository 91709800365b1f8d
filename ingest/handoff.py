"""The worker's side of ``--workers``: batches from the reader, committed, then confirmed.

A worker runs the whole pipeline (decode, score, alert, store) on the slices the reader's
`ingest.fanout.FanOut` sends it. Once built it says `READY`, so that the reader takes
messages from the broker only when its workers can take them (a start takes ~1 s of imports
and models, during which a backlog would wait in the reader unacked). It answers each slice
with ``("done", seq, dead_letters)`` once committed. When its store refuses a write it
answers ``("held", seq, reason)`` at once (the reader holds the batch unacked) and keeps
trying with growing pauses until the write succeeds, then answers ``done``; a refusal for
good is ``("failed", seq, reason)``, and the worker stops. Between slices it lets time act
(`IngestPipeline.tick`: deadman, flushes, checkpoints). The end of the pipe (the reader
stopped, or died) ends it.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from typing import Protocol

from common.backoff import backoff
from ingest.deadletters import DeadLetter
from ingest.errors import StoreError
from ingest.pipeline import IngestPipeline, Message, PreparedBatch

log = logging.getLogger(__name__)

#: The worker's first frame: its pipeline is built and it takes slices.
READY = b"ready"
#: Seconds between ticks while slices keep coming, and the longest wait for one.
_TICK_S = 1.0
#: Pauses between tries of a held slice: from, to (seconds).
_RETRY = (0.5, 10.0)


class Pipe(Protocol):
    """The worker's end of its link to the reader."""

    def poll(self, timeout: float) -> bool:
        """Whether a frame is waiting, after at most `timeout` seconds."""

    def recv_bytes(self) -> bytes:
        """The next frame (`EOFError` once the reader closed its end)."""

    def send_bytes(self, frame: bytes) -> None:
        """Send one reply."""


class Handoff:
    """Takes slices from the reader and commits them through `pipeline`.

    Implements what the app runs as its source (``run``, ``connected``, ``subscribed``,
    ``backpressure``), as `ingest.subscriber.Subscriber` does for a single process.
    """

    def __init__(self, pipe: Pipe, pipeline: IngestPipeline) -> None:
        self.pipe = pipe
        self.pipeline = pipeline
        self.connected = True
        self.subscribed = True
        self._held: tuple[int, PreparedBatch] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._ticked_at = time.monotonic()
        self._letters: list[DeadLetter] = []
        pipeline.on_rejected = self._letters.append

    @property
    def backpressure(self) -> bool:
        """True while a slice waits for the store."""
        return self._held is not None

    def run(self, stop: threading.Event) -> None:
        """Say `READY`, then serve slices until the reader closes the pipe or `stop` is set."""
        try:
            self.pipe.send_bytes(READY)
            while not stop.is_set():
                if self._held is not None:
                    self._retry()
                    continue
                if self.pipe.poll(_TICK_S):
                    seq, items = pickle.loads(self.pipe.recv_bytes())
                    messages = [Message(topic, body, arrival) for topic, body, arrival in items]
                    self._commit(seq, self.pipeline.prepare(messages))
                if time.monotonic() - self._ticked_at >= _TICK_S:
                    self._ticked_at = time.monotonic()
                    self.pipeline.tick()
        except EOFError:
            log.info("the reader closed the link: stopping")
        finally:
            self.connected = self.subscribed = False

    def _commit(self, seq: int, prepared: PreparedBatch) -> None:
        try:
            self.pipeline.commit(prepared)
        except StoreError as exc:
            if not exc.retryable:  # the reader ends the run, as a single process would
                self.pipe.send_bytes(pickle.dumps(("failed", seq, str(exc))))
                raise
            self._held = (seq, prepared)
            self._failures += 1
            self._retry_at = time.monotonic() + backoff(self._failures, *_RETRY)
            self.pipe.send_bytes(pickle.dumps(("held", seq, str(exc))))
            return
        self._held = None
        self._failures = 0
        letters = self._letters[:]
        self._letters.clear()
        self.pipe.send_bytes(pickle.dumps(("done", seq, letters)))

    def _retry(self) -> None:
        assert self._held is not None
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, _TICK_S))
            return
        self._commit(*self._held)
