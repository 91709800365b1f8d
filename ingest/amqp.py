"""The clustered source: telemetry from RabbitMQ partition queues, acked after the commit.

Sensors publish MQTT to RabbitMQ's MQTT plugin; a consistent-hash exchange spreads the
messages over ``amqp.partitions`` quorum queues by a hash of the topic, so an asset's
readings always land in the same queue, in order (`ingest.amqptopology`, which each instance
declares). Each instance consumes the partitions `ingest.assignment` gives it among the live
instances, which it learns from heartbeats on a fanout exchange (`ingest.heartbeats`, on a
thread and connection of their own), each partition on a channel of its own
(`ingest.partitionchannels`). The queues have a single active consumer: while an old owner
still holds a partition, the new owner's consumer waits and the broker hands the queue over
when the old one cancels or its connection dies. So a partition is never consumed by two
instances, whatever their views of the membership.

The batch protocol is the MQTT subscriber's (`ingest.subscriber`, docs/design.md §7):
deliveries are collected while the socket has more, up to ``ingest.batch_max`` or
``ingest.linger``, prepared and committed by the pipeline, and only then acked, on the
channel that delivered them. Before it gives up a partition the source commits and acks
what it holds and calls ``on_release`` with the topics it saw in the partitions given up
(their assets' models and alert state are saved for the next owner and forgotten,
docs/design.md §10); a crash instead leaves the unacked messages to the broker, which
delivers them to the next owner. A lost connection (a node killed) drops what was not
committed and connects to the next URL: the broker redelivers, the stores are idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from common.backoff import backoff
from ingest.amqptopology import binding_key, declare, topic_of
from ingest.assignment import Members, assign
from ingest.errors import StoreError
from ingest.heartbeats import Heartbeats
from ingest.holding import HeldBatch
from ingest.logthrottle import ThrottledLog
from ingest.partitionchannels import PartitionChannels
from ingest.pipeline import Message
from ingest.settings import AmqpSettings, IngestSettings
from ingest.subscriber import BatchSink
from ingest.topic import TopicTemplate

log = logging.getLogger(__name__)

# Delay bounds (s) between connection attempts, over all the nodes.
_RECONNECT = (0.2, 5.0)
# Processors hear that time passed (deadman checks, notification timers) this often, in s.
_TICK_SECONDS = 1.0
# Errors that mean the connection or its channel is gone: reconnect, the broker redelivers.
_LOST = (pika.exceptions.AMQPError, OSError)


class AmqpSource:
    """Consumes this instance's partitions of the cluster and commits them through `pipeline`.

    Implements what the app runs as its source (``run``, ``connected``, ``subscribed``,
    ``backpressure``), as `ingest.subscriber.Subscriber` does for MQTT.

    Parameters
    ----------
    settings
        Nodes, partitions, exchanges and membership timing.
    ingest_settings
        Batching limits.
    template
        The MQTT topic template (the binding of the partitions to ``amq.topic``).
    instance
        This instance's name among the members (``mqtt.client_id``).
    own_prefix
        meshwatch's own topic prefix (``mqtt.prefix``): messages under it are acked, ignored.
    pipeline
        Decodes, processes and commits (`ingest.subscriber.BatchSink`).
    on_release
        Called after the last commit of partitions this instance gives up, before the
        broker may hand them to another, with the topics seen in them (None at shutdown:
        all of them); the models save their checkpoints.
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        settings: AmqpSettings,
        ingest_settings: IngestSettings,
        template: TopicTemplate,
        instance: str,
        own_prefix: str,
        pipeline: BatchSink[Any],
        on_release: Callable[[Collection[str] | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.instance = instance
        self.pipeline = pipeline
        self.metrics = pipeline.metrics
        self.on_release = on_release
        self._binding = binding_key(template)
        self._own = own_prefix.replace("/", ".") + "."
        self._batch_max = ingest_settings.batch_max
        self._linger_ns = int(ingest_settings.linger * 1e9)
        self._clock = clock
        self.members = Members(instance, settings.member_timeout, clock)
        self._membership_changed = threading.Event()
        self.heartbeats = Heartbeats(settings, self.members, self._membership_changed.set)
        self.connected = False
        self.subscribed = False
        #: The partitions this instance consumes now, each on a channel of its own.
        self.partitions = PartitionChannels(settings)
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None  # declarations only
        self._next_url = 0
        self._pending: list[Message] = []
        self._look_at = 0.0
        self._ticked_at = clock()
        self._log = ThrottledLog(log, interval=10.0)
        self._hold = HeldBatch(pipeline, self._ack, self._log, clock)

    @property
    def backpressure(self) -> bool:
        """True while a batch waits for the store and its acks are held back."""
        return self._hold.batch is not None

    # ---- the loop ----

    def run(self, stop: threading.Event) -> None:
        """Consume and commit until `stop` is set, then finish the batch in hand and leave.

        Raises `StoreError` when the store refuses a batch for good: nothing of it is acked.
        """
        failures = 0
        self.heartbeats.start()
        try:
            while not stop.is_set():
                if self._conn is None:
                    if not self._connect():
                        failures += 1
                        stop.wait(backoff(failures, *_RECONNECT))
                        continue
                    failures = 0
                try:
                    self._turn()
                except _LOST as exc:
                    self._lost(exc)
        finally:
            self._finish()

    def _turn(self) -> None:
        """One pass: read what the socket has, heartbeat and rebalance when due, commit, tick."""
        assert self._conn is not None
        before = len(self._pending)
        self._conn.process_data_events(time_limit=self._timeout())
        # Read on while deliveries keep coming, as the MQTT subscriber does: one read often
        # holds only a few large messages, and a commit per few messages costs throughput.
        count = len(self._pending)
        while before < count < self._batch_max and self._hold.batch is None:
            self._conn.process_data_events(time_limit=0)
            if len(self._pending) == count:
                break
            count = len(self._pending)
        grew = len(self._pending) > before
        now = self._clock()
        if now >= self._look_at or self._membership_changed.is_set():
            # Membership changes are heard at once; the look each heartbeat notices the
            # members whose heartbeats stopped.
            self._membership_changed.clear()
            self._look_at = now + self.settings.heartbeat
            self._rebalance()
        self._step(grew=grew)
        if now - self._ticked_at >= _TICK_SECONDS and self._hold.batch is None:
            self._ticked_at = now
            self.pipeline.tick()

    def _timeout(self) -> float:
        if self._hold.batch is not None:
            return min(0.2, self._hold.wait())
        return 0.0 if self._pending else 0.2

    def _step(self, *, grew: bool, force: bool = False) -> None:
        """Commit when the socket ran dry, the batch is full, it waited `linger`, or `force`."""
        if self._hold.batch is not None:
            self._hold.retry(force=force)
            return
        pending = self._pending
        if pending and (
            force
            or not grew
            or len(pending) >= self._batch_max
            or time.time_ns() - pending[0].arrival_ns >= self._linger_ns
        ):
            self._pending = []
            self._hold.commit(self.pipeline.prepare(pending))

    def _ack(self, messages: list[Message]) -> None:
        """Ack a committed batch on the channels that delivered it (`PartitionChannels.ack`)."""
        self.metrics.acks.inc(self.partitions.ack(messages))

    # ---- deliveries ----

    def _on_delivery(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        key = method.routing_key or ""
        tag = method.delivery_tag or 0
        if key.startswith(self._own):  # our own output, routed by a template such as '#'
            channel.basic_ack(tag)  # not telemetry: storing or rejecting it would feed back
            self.metrics.messages_ignored.inc()
            return
        session = self.partitions.arrived(channel, key)
        if session is None:  # a channel being closed: the broker requeues what it sent
            return
        self._pending.append(Message(topic_of(key), body, time.time_ns(), tag, 1, session))

    def _on_cancelled(self, method: Any) -> None:
        """The broker cancelled a consumer (its queue moved or was deleted): consume again.

        The next rebalance takes the partition again on a new channel; the old channel stays
        open until then, so what it delivered can still be acked after the commit.
        """
        for partition in self.partitions.cancelled(getattr(method, "channel_number", None)):
            log.warning("the broker cancelled partition %d: taking it again", partition)

    # ---- membership and partitions ----

    def _rebalance(self) -> None:
        """Consume the partitions assigned to this instance now, after releasing the others."""
        want = assign(self.settings.partitions, self.members.live())[self.instance]
        release = [p for p in self.partitions.held if p not in want]
        if release:
            self._release(release)
        assert self._conn is not None
        acquire = sorted(want - self.partitions.held.keys())
        for partition in acquire:
            self.partitions.take(self._conn, partition, self._on_delivery, self._on_cancelled)
        if release or acquire:
            log.info("partitions held: %s", sorted(self.partitions.held))
        self.subscribed = True

    def _release(self, partitions: list[int]) -> None:
        """Commit and ack what is pending, let the models save, then close the channels.

        Closing the channels hands what the broker had sent ahead back to the queues at once
        (`PartitionChannels.close`).
        """
        self._step(grew=False, force=True)
        if self._hold.batch is not None:
            return  # the store refuses: keep the partitions until their messages are in
        self._let_go(self.partitions.topics(partitions))
        for partition in partitions:
            self.partitions.close(partition)
        log.info("released partitions %s", sorted(partitions))

    def _let_go(self, topics: Collection[str] | None) -> None:
        """Call `on_release`; should it fail, the next owner starts from older checkpoints."""
        if self.on_release is None:
            return
        try:
            self.on_release(topics)
        except Exception:  # the I/O shell: a failed save must not stop the hand-over
            log.exception("saving state before releasing partitions failed")

    # ---- connection ----

    def _connect(self) -> bool:
        urls = self.settings.urls
        url = urls[self._next_url % len(urls)]
        self._next_url += 1
        try:
            conn = pika.BlockingConnection(pika.URLParameters(url))
            channel = conn.channel()
            declare(channel, self.settings, self._binding)
        except _LOST as exc:
            self._log.warning("connect", "cannot use the RabbitMQ node %s: %s", _safe(url), exc)
            return False
        self._conn, self._channel = conn, channel
        self.partitions.reset()
        # Hear the others for two heartbeats before taking partitions: an instance that
        # starts beside running ones would otherwise take everything, then hand most back.
        self._look_at = self._clock() + 2 * self.settings.heartbeat
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        self.metrics.mqtt_connects.inc()
        log.info("connected to RabbitMQ at %s as %s", _safe(url), self.instance)
        return True

    def _lost(self, exc: BaseException) -> None:
        """The connection is gone: drop what was not committed; the broker redelivers it."""
        self._log.warning("lost", "lost the RabbitMQ connection (%s): reconnecting", exc)
        self._pending = []
        self._hold.drop()
        self._close_quietly()

    def _close_quietly(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self.connected = self.subscribed = False
        self.partitions.reset()
        self.metrics.mqtt_connected.set(0)
        if conn is not None and conn.is_open:
            with contextlib.suppress(*_LOST):
                conn.close()

    def _finish(self) -> None:
        """Commit and ack the batch in hand, say goodbye to the others, close."""
        try:
            if self._conn is not None:
                self._step(grew=False, force=True)
                if self._hold.batch is None:
                    self._let_go(None)
        except _LOST as exc:
            log.warning("leaving with the batch in hand unacked (it is redelivered): %s", exc)
        except StoreError as exc:
            log.warning("leaving with a batch unacked (the broker redelivers it): %s", exc)
        finally:
            # The partitions go to the others once this connection closes, and the goodbye
            # makes them take them at once.
            self._close_quietly()
            self.heartbeats.stop()


def _safe(url: str) -> str:
    """A URL without its password, for the log."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
