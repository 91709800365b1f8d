"""The RabbitMQ topology that feeds a cluster's partitions: exchanges, queues, bindings.

Sensors publish MQTT to RabbitMQ's MQTT plugin, which routes each message to ``amq.topic``
with the topic's ``/`` turned into ``.``. A consistent-hash exchange (``amqp.exchange``,
plugin ``rabbitmq_consistent_hash_exchange``) bound to ``amq.topic`` hashes the routing key
to one of ``amqp.partitions`` quorum queues, so an asset's readings always land in the same
queue, in order, replicated on a quorum of nodes. The plugin PUBACKs a QoS 1 message only
once the quorum queue confirmed it (measured: kill -9 of a node during a 30,000-message
publish lost none; docs/scaling.md). Every instance declares the topology (`declare`,
idempotent) before it consumes.
"""

from __future__ import annotations

from pika.adapters.blocking_connection import BlockingChannel

from ingest.settings import AmqpSettings
from ingest.topic import TopicTemplate


def binding_key(template: TopicTemplate) -> str:
    """The ``amq.topic`` binding that feeds the partitions from an MQTT topic template.

    The literal levels before the first placeholder, then ``#``: a topic whose site or
    asset holds a ``.`` (which the MQTT plugin cannot tell from a level separator) still
    reaches a partition and becomes a ``bad_topic`` dead letter instead of being dropped
    unrouted. A template that starts with a placeholder binds its exact pattern.

    Examples
    --------
    >>> binding_key(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    'plant.#'
    >>> binding_key(TopicTemplate.parse("{site}/{asset}/telemetry"))
    '*.*.telemetry'
    """
    prefix = []
    for level in template.levels:
        if level in ("{site}", "{asset}"):
            break
        prefix.append(level)
    if prefix:
        return ".".join([*prefix, "#"])
    return template.subscription.replace("+", "*").replace("/", ".")


def topic_of(routing_key: str) -> str:
    """The MQTT topic a routing key came from (``.`` back to ``/``).

    >>> topic_of("plant.s1.a1.telemetry")
    'plant/s1/a1/telemetry'
    """
    return routing_key.replace(".", "/")


def declare(channel: BlockingChannel, settings: AmqpSettings, binding: str) -> None:
    """The exchanges, the partition queues and their bindings (all idempotent).

    `binding` is the ``amq.topic`` binding of the partitions (`binding_key`).
    """
    s = settings
    channel.exchange_declare(s.exchange, "x-consistent-hash", durable=True)
    channel.exchange_bind(s.exchange, "amq.topic", binding)
    channel.exchange_declare(s.members_exchange, "fanout", durable=True)
    arguments = {"x-queue-type": "quorum", "x-single-active-consumer": True}
    for partition in range(s.partitions):
        channel.queue_declare(s.queue(partition), durable=True, arguments=arguments)
        # A weight of 1 each: every partition gets the same share of the hash ring.
        channel.queue_bind(s.queue(partition), s.exchange, "1")
