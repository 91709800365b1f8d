"""Heartbeats of a cluster's instances over RabbitMQ: who is alive, on a thread of its own.

Every instance publishes ``{"instance": <name>}`` on a fanout exchange
(``amqp.members_exchange``) every ``amqp.heartbeat`` seconds, and hears the others' through an
exclusive queue of its own bound to it; `ingest.assignment.Members` turns what it heard into
the live members. A clean stop publishes ``{"instance": <name>, "leaving": true}`` so the
others move its partitions at once.

The heartbeats have their own connection and thread, apart from the source's batches: a
batch that takes seconds (a large commit, models loaded after a hand-over, a busy machine)
must not make the others think this instance died, which would move its partitions away and
back (measured: with the heartbeats in the batch loop, two instances on a loaded 2-core
machine traded partitions back and forth while draining). A process that dies loses both
connections, so it is still seen gone after ``amqp.member_timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import orjson
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from ingest.assignment import Members
from ingest.settings import AmqpSettings

log = logging.getLogger(__name__)

# Errors that mean the connection is gone: connect again, to the next node.
_LOST = (pika.exceptions.AMQPError, OSError)


class Heartbeats:
    """Sends this instance's heartbeats and hears the others', until `stop`.

    Parameters
    ----------
    settings
        Nodes, the members exchange and the heartbeat interval.
    members
        What is heard goes here.
    on_change
        Called (on the heartbeat thread) when a member joins or leaves, so the source can
        rebalance without waiting for its next look.
    """

    def __init__(
        self,
        settings: AmqpSettings,
        members: Members,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.members = members
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self._next_url = 0

    def start(self) -> None:
        """Start beating and listening."""
        self._thread.start()

    def stop(self) -> None:
        """Say goodbye to the others and stop (waits at most a few seconds)."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            urls = self.settings.urls
            url = urls[self._next_url % len(urls)]
            self._next_url += 1
            try:
                self._session(url)
            except _LOST as exc:
                log.warning("heartbeats: lost the RabbitMQ node (%s): next node", exc)
                self._stop.wait(min(1.0, self.settings.heartbeat))

    def _session(self, url: str) -> None:
        """Beat and listen on one connection until `stop` or the connection fails."""
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = conn.channel()
            channel.exchange_declare(self.settings.members_exchange, "fanout", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(queue, self.settings.members_exchange)
            channel.basic_consume(queue, self._on_beat, auto_ack=True)
            while not self._stop.is_set():
                self._beat(channel)
                conn.process_data_events(time_limit=self.settings.heartbeat)
            self._beat(channel, leaving=True)
        finally:
            if conn.is_open:
                with contextlib.suppress(*_LOST):
                    conn.close()

    def _beat(self, channel: BlockingChannel, *, leaving: bool = False) -> None:
        body = orjson.dumps({"instance": self.members.me, "leaving": leaving})
        channel.basic_publish(self.settings.members_exchange, "", body)

    def _on_beat(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        try:
            beat = orjson.loads(body)
            member = str(beat["instance"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if member == self.members.me:
            return
        before = self.members.live()
        if beat.get("leaving"):
            self.members.left(member)
        else:
            self.members.heard(member)
        if self.on_change is not None and self.members.live() != before:
            self.on_change()
