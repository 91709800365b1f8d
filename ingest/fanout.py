"""The reader's side of ``--workers``: hand each batch's messages to the workers that own them.

With ``meshwatch run --workers N`` one process reads the broker (the usual `Subscriber`, the
usual session) and this sink stands where the pipeline would: `FanOut.prepare` splits a
batch by owner (`ingest.partition`: CRC-32 of ``site/asset``, of the topic for a topic that
names no asset) and sends each worker its slice; `FanOut.commit` returns once every worker
has committed its slice, so the subscriber acks the batch only after the durable writes, in
order on its one connection. A worker that answers it is holding its slice (its store
refuses writes) makes `commit` raise a retryable `StoreError`: the subscriber holds the batch
and asks again, as with its own store. A worker that dies is started again and sent what it
had not confirmed; nothing was acked, and the store takes a resent reading once.

The reader does not wait for one batch before it hands out the next: it reads and sends batch
N+1 while the workers commit batch N (the subscriber's ``ahead``), then waits for N, so the
workers always have the next slice queued. A worker answers its slices in the order it got
them, and the subscriber commits (and acks) batches in the order it made them.

Frames between them (`Link`) are pickled tuples: to a worker ``(seq, [(topic, payload,
arrival_ns), ...])``; from it ``("done", seq, dead_letters)``, ``("held", seq, reason)`` or
``("failed", seq, reason)`` (its store refused for good: the run ends, as with one process).
The dead letters come back so the reader can republish them on its connection
(``ingest.publish_deadletters``).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ingest.deadletters import DeadLetter
from ingest.errors import RejectedMessage, StoreError
from ingest.metrics import IngestMetrics
from ingest.partition import owner, topic_owner
from ingest.pipeline import Message
from ingest.topic import TopicTemplate

log = logging.getLogger(__name__)

#: How long `commit` waits in one go before it looks for dead workers again.
_SLICE_S = 0.2

Frame = tuple[int, list[tuple[str, bytes, int]]]


class Link(Protocol):
    """One worker process, as the reader talks to it."""

    index: int

    def send(self, frame: bytes) -> None:
        """Queue one frame to the worker (never blocks on a dead worker)."""

    def poll(self, timeout: float) -> bool:
        """Whether a reply is waiting, after at most `timeout` seconds."""

    def recv(self) -> bytes:
        """The next reply (`EOFError` when the worker is gone)."""

    def alive(self) -> bool:
        """Whether the worker process runs."""

    def restart(self) -> None:
        """Start the worker again after it died (an error if it cannot run at all)."""


@dataclass(slots=True)
class Dispatched:
    """A batch handed out: its messages (what the subscriber acks) and who holds what."""

    messages: list[Message]
    seq: int
    #: Worker index -> the frame it was sent, until it confirms.
    waiting: dict[int, bytes] = field(default_factory=dict)
    #: Worker index -> why it holds its slice (its store refused the write).
    held: dict[int, str] = field(default_factory=dict)


class FanOut:
    """A batch sink that spreads each batch over the workers and waits for their commits.

    Parameters
    ----------
    template
        The topic template (site and asset decide the owner).
    links
        The workers, in index order.
    metrics
        The reader's ingest metrics.
    """

    def __init__(
        self, template: TopicTemplate, links: Sequence[Link], metrics: IngestMetrics
    ) -> None:
        self.template = template
        self.links = list(links)
        self.metrics = metrics
        #: Called with each dead letter a worker stored (the subscriber republishes them).
        self.on_rejected: Callable[[DeadLetter], None] | None = None
        self._owners: dict[str, int] = {}
        self._seq = 0
        #: The batches handed out and not yet committed, oldest first.
        self._out: list[Dispatched] = []

    def owner_of(self, topic: str) -> int:
        """The worker that takes a message on `topic` (cached per topic)."""
        found = self._owners.get(topic)
        if found is None:
            count = len(self.links)
            try:
                site, asset = self.template.match(topic)
                found = owner(site, asset, count)
            except RejectedMessage:  # a bad topic: one worker keeps its dead letter
                found = topic_owner(topic, count)
            if len(self._owners) >= 100_000:
                self._owners.clear()
            self._owners[topic] = found
        return found

    def prepare(self, messages: list[Message]) -> Dispatched:
        """Send each worker its share of the batch; return what to wait for."""
        self._seq += 1
        slices: dict[int, list[tuple[str, bytes, int]]] = {}
        owner_of = self.owner_of
        for m in messages:
            slices.setdefault(owner_of(m.topic), []).append((m.topic, m.payload, m.arrival_ns))
        dispatched = Dispatched(messages, self._seq)
        for index, items in slices.items():
            frame = pickle.dumps((self._seq, items), protocol=pickle.HIGHEST_PROTOCOL)
            dispatched.waiting[index] = frame
            self._send(self.links[index], frame)
        self._out.append(dispatched)
        self.metrics.messages_received.inc(len(messages))
        return dispatched

    def commit(self, dispatched: Dispatched) -> None:
        """Return once every worker committed its slice; `StoreError` while one holds it."""
        while dispatched.waiting:
            for index in list(dispatched.waiting):
                link = self.links[index]
                if not link.alive():
                    self._revive(link)
                    continue
                while index in dispatched.waiting and link.poll(0):
                    self._answer(link, dispatched)
            if dispatched.held and all(i in dispatched.held for i in dispatched.waiting):
                reasons = "; ".join(f"worker {i}: {why}" for i, why in dispatched.held.items())
                raise StoreError(f"a worker holds its slice: {reasons}", retryable=True)
            if dispatched.waiting:
                self._wait(dispatched)
        if dispatched in self._out:
            self._out.remove(dispatched)

    def tick(self) -> None:
        """Start again the workers that died between commits, sending them what is out.

        A batch may be out while the subscriber ticks (it reads the next while the workers
        commit the last): a worker started again without its slices would leave that batch
        waiting for good.
        """
        for link in self.links:
            if not link.alive():
                self._revive(link)

    def _wait(self, dispatched: Dispatched) -> None:
        """Sleep until a waiting worker answers, at most a slice of time."""
        deadline = time.monotonic() + _SLICE_S
        for index in list(dispatched.waiting):
            left = deadline - time.monotonic()
            if self.links[index].poll(max(0.0, left)):
                return

    def _answer(self, link: Link, dispatched: Dispatched) -> None:
        try:
            reply = pickle.loads(link.recv())
        except EOFError:  # its end closed: it died, or is dying
            self._revive(link)
            return
        if reply[1] != dispatched.seq:
            return  # a late answer to a frame sent again after a restart
        if reply[0] == "done":
            dispatched.waiting.pop(link.index, None)
            dispatched.held.pop(link.index, None)
            if self.on_rejected is not None:
                for letter in reply[2]:
                    self.on_rejected(letter)
        elif reply[0] == "held":
            dispatched.held[link.index] = str(reply[2])
        else:  # failed: a store that will never take it; nothing of the batch is acked
            raise StoreError(f"worker {link.index}: {reply[2]}", retryable=False)

    def _revive(self, link: Link) -> None:
        """Start a dead worker again and send it again its slices of every batch out, in order."""
        link.restart()
        for batch in self._out:
            if link.index in batch.waiting:
                batch.held.pop(link.index, None)
                self._send(link, batch.waiting[link.index])

    def _send(self, link: Link, frame: bytes) -> None:
        # A dead worker: commit finds it, starts it again and resends.
        with contextlib.suppress(OSError, EOFError):
            link.send(frame)
