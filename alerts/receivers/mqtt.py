"""The MQTT receiver: each alert published to ``<prefix>/alerts/{site}/{asset}`` at QoS 1.

This is the docs/design.md §3 alerts topic: dashboards, schedulers and other nodes subscribe to
``meshwatch/alerts/#`` and get every alert as its JSON (``Alert.to_json``), one message per
alert, not retained. The receiver publishes through the pipeline's own MQTT connection (a
`Publisher` the wiring hands it) and waits for the broker's PUBACK of each message, so a
notification counts as delivered only once the broker holds every alert of it; a broker that
does not acknowledge within ``timeout`` makes a retryable `DeliveryError`, and a retry
publishes the whole notification again (subscribers deduplicate by the alert ``id`` and
``state``).

Settings
--------
Under ``alerts.receivers`` in the configuration::

    receivers:
      - name: bus
        mqtt: {timeout: 10.0}   # seconds to wait for each PUBACK

The broker and the prefix are the pipeline's (``mqtt.host``, ``mqtt.prefix``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from alerts.base import Notification, Publisher
from alerts.errors import DeliveryError

# Characters an MQTT topic level of ours cannot hold: the separator, wildcards, NUL
# (MQTT 5 §4.7.1, §1.5.4).
_NOT_IN_LEVEL = frozenset("/+#\x00")


class MqttReceiverSettings(BaseModel):
    """Settings of an MQTT receiver: how long to wait for the broker's PUBACK."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float = Field(10.0, gt=0)


def alert_topic(prefix: str, alert: Mapping[str, Any]) -> str:
    """The topic of an alert: ``<prefix>/alerts/{site}/{asset}``.

    Raises
    ------
    DeliveryError
        Not retryable, when the alert has no site or asset, or one that cannot be a topic
        level (the alert itself is broken; resending it cannot help).

    Examples
    --------
    >>> alert_topic("meshwatch", {"site": "plant-a", "asset": "cnc-1"})
    'meshwatch/alerts/plant-a/cnc-1'
    >>> alert_topic("meshwatch", {"site": "plant-a", "asset": "*"})
    'meshwatch/alerts/plant-a/*'
    """
    levels = []
    for key in ("site", "asset"):
        value = alert.get(key)
        if not isinstance(value, str) or not value or _NOT_IN_LEVEL & set(value):
            raise DeliveryError(
                f"alert {alert.get('id')!r} has {key} {value!r}, which cannot be a topic level",
                retryable=False,
            )
        levels.append(value)
    return f"{prefix}/alerts/{levels[0]}/{levels[1]}"


class MqttReceiver:
    """Publishes each alert of a notification on its alerts topic and waits for the PUBACK.

    Parameters
    ----------
    name
        The receiver's name in the configuration.
    settings
        The PUBACK timeout.
    publisher
        The MQTT connection to publish through; the wiring owns it, `close` leaves it open.
    prefix
        The topic prefix (``mqtt.prefix``), ``meshwatch`` by default.
    """

    def __init__(
        self,
        name: str,
        settings: MqttReceiverSettings,
        publisher: Publisher,
        prefix: str = "meshwatch",
    ) -> None:
        self.name = name
        self.settings = settings
        self.prefix = prefix
        self._publisher = publisher
        self._closed = False

    def notify(self, notification: Notification) -> None:
        """Publish every alert at QoS 1, in order, each confirmed by the broker.

        Raises
        ------
        DeliveryError
            From the publisher when the broker does not acknowledge in time (retryable), or
            when an alert cannot be put on a topic (not retryable).
        """
        if self._closed:
            raise DeliveryError(f"mqtt receiver {self.name!r} is closed", retryable=True)
        messages = [
            (alert_topic(self.prefix, alert), orjson.dumps(dict(alert)))
            for alert in notification.alerts
        ]
        for topic, payload in messages:
            self._publisher.publish_confirmed(topic, payload, self.settings.timeout)

    def close(self) -> None:
        """Stop accepting notifications; the publisher belongs to the wiring and stays open."""
        self._closed = True

    def __repr__(self) -> str:
        return f"MqttReceiver({self.name!r}, prefix={self.prefix!r})"
