"""The partitions an instance consumes, each on an AMQP channel of its own, and their acks.

A partition queue is consumed on a channel of its own (`PartitionChannels.take`), with
``amqp.prefetch`` deliveries ahead: quorum queues have no channel-wide limit. A delivery is
acked on the channel that delivered it, so each delivery's `ingest.pipeline.Message` names
a *session*: the channel it came on and its partition. Closing a partition's channel (rather
than cancelling its consumer) hands what the broker had sent ahead back to the queue at once
(`close`): pika would otherwise read and reject every one of them first (measured: 12 s for
11 partitions of 1,000, the partitions idle meanwhile). The routing keys seen on each
partition are kept, so that releasing it can name the assets it held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from ingest.amqptopology import topic_of
from ingest.pipeline import Message
from ingest.settings import AmqpSettings

#: Called with each delivery: its channel, method (routing key, tag), properties and body.
OnDelivery = Callable[[BlockingChannel, Basic.Deliver, BasicProperties, bytes], None]


class PartitionChannels:
    """The partitions held now, their channels and sessions, and the routing keys seen.

    Parameters
    ----------
    settings
        The partition queues' names and the prefetch.
    """

    def __init__(self, settings: AmqpSettings) -> None:
        self.settings = settings
        #: The partitions this instance consumes now, each on a channel of its own.
        self.held: dict[int, BlockingChannel] = {}
        #: What a delivery's `Message.session` names: the channel it came on, and partition.
        self._sessions: dict[int, tuple[BlockingChannel, int]] = {}
        self._session_of: dict[int, int] = {}  # channel number -> session
        #: Routing keys seen per partition: what to release with it.
        self._keys: dict[int, set[str]] = {}
        self._session = 0

    def take(
        self,
        conn: BlockingConnection,
        partition: int,
        on_delivery: OnDelivery,
        on_cancelled: Callable[[Any], None],
    ) -> None:
        """Consume `partition` on a new channel of `conn` (a new session)."""
        channel = conn.channel()
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        channel.add_on_cancel_callback(on_cancelled)
        self._session += 1
        self._sessions[self._session] = (channel, partition)
        self._session_of[channel.channel_number] = self._session
        channel.basic_consume(self.settings.queue(partition), on_delivery)
        self.held[partition] = channel

    def arrived(self, channel: BlockingChannel, key: str) -> int | None:
        """The session of a delivery with routing key `key` on `channel`, noting the key.

        None for a channel being closed: the broker requeues what it sent on it.
        """
        session = self._session_of.get(channel.channel_number)
        if session is None:
            return None
        self._keys.setdefault(self._sessions[session][1], set()).add(key)
        return session

    def cancelled(self, channel_number: int | None) -> list[int]:
        """The partitions consumed on that channel, no longer held (the broker cancelled)."""
        gone = [p for p, c in self.held.items() if c.channel_number == channel_number]
        for partition in gone:
            del self.held[partition]
        return gone

    def topics(self, partitions: Iterable[int]) -> list[str]:
        """The topics seen on `partitions` (forgotten here: they are being released)."""
        return [topic_of(key) for p in partitions for key in self._keys.pop(p, ())]

    def close(self, partition: int) -> None:
        """Close a partition's channel; the broker requeues what it delivered and we did not ack."""
        channel = self.held.pop(partition)
        session = self._session_of.pop(channel.channel_number, None)
        if session is not None:
            self._sessions.pop(session, None)
        if channel.is_open:
            channel.close()

    def ack(self, messages: list[Message]) -> int:
        """Ack, on each delivering channel, up to its last message; return how many were acked.

        All messages before the last of a channel were committed too. A message of a channel
        closed since (a lost connection) is redelivered instead.
        """
        last: dict[int, int] = {}
        for m in messages:
            last[m.session] = max(m.mid, last.get(m.session, 0))
        acked = 0
        for session, tag in last.items():
            found = self._sessions.get(session)
            if found is not None and found[0].is_open:
                found[0].basic_ack(tag, multiple=True)
                acked += sum(1 for m in messages if m.session == session)
        return acked

    def reset(self) -> None:
        """Forget every channel (the connection is new, or gone)."""
        self.held = {}
        self._sessions = {}
        self._session_of = {}
        self._keys = {}
