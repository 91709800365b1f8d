"""Wiring of an instance of a RabbitMQ cluster (``amqp.urls``, docs/design.md §10).

What the other settings must allow for a clustered source, and what the source calls when it
gives partitions up: the models and the alert state of the assets in them are saved for
their next holder and forgotten here (`models.registry.ModelRegistry.release`,
`alerts.engine.AlertEngine.release`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection

from alerts.engine import AlertEngine
from ingest.errors import RejectedMessage
from ingest.topic import TopicTemplate
from meshwatch.errors import ConfigError
from meshwatch.settings import Settings
from models.registry import ModelRegistry

log = logging.getLogger("meshwatch")

Release = Callable[[Collection[str] | None], None]


def check_cluster(settings: Settings) -> None:
    """Refuse what a RabbitMQ source (``amqp.urls``) cannot do with the other settings."""
    if not settings.amqp.urls:
        return
    # RabbitMQ's MQTT plugin turns "/" into "." and leaves "." as it is: a literal level with
    # a "." could not be told from two levels once routed.
    dotted = [level for level in settings.mqtt.topic.split("/") if "." in level]
    if dotted:
        raise ConfigError(
            f"invalid setting mqtt.topic (MESHWATCH_MQTT__TOPIC): level {dotted[0]!r} holds a "
            "'.', which RabbitMQ (amqp.urls) reads as a level separator: use '-' or '_'"
        )
    if settings.ingest.publish_deadletters:
        raise ConfigError(
            "invalid setting ingest.publish_deadletters (MESHWATCH_INGEST__PUBLISH_DEADLETTERS):"
            " the RabbitMQ source (amqp.urls) keeps dead letters in the data dir only; set false"
        )


def release_hook(
    models: ModelRegistry | None, alerts: AlertEngine | None, template: TopicTemplate
) -> Release | None:
    """What the clustered source calls before it gives partitions up (None: nothing to do).

    The models and alert state of the assets on the topics given up (None: at shutdown,
    every asset, kept) are saved for the next holder; those given up are forgotten here.
    """
    if models is None and alerts is None:
        return None

    def release(topics: Collection[str] | None) -> None:
        keys: set[tuple[str, str]] | None = None
        if topics is not None:
            keys = set()
            for topic in topics:
                with contextlib.suppress(RejectedMessage):  # a dead letter has no asset
                    keys.add(template.match(topic))
        try:
            if models is not None:
                saved = models.release(keys)
                log.info("saved %d models before releasing partitions", saved)
        finally:  # the alerts are let go even when the models could not be saved
            if alerts is not None:
                handed = alerts.release(keys)
                log.info("handed the alert state of %d assets over", handed)

    return release
