"""Publishing the fleet's state: the retained health map and reroute advice.

Changes are published only after the state that holds them is saved, so what the fleet sees
never runs ahead of what a restart would remember; a change whose save failed waits for the
next save that succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson

from alerts.base import AssetKey, Publisher
from alerts.errors import DeliveryError
from alerts.health.status import AssetHealth

log = logging.getLogger(__name__)

#: Seconds a hand-over waits for the broker to confirm it cleared the health given up: the
#: broker's PUBACK takes milliseconds; a broker that is away must not hold the hand-over.
CLEAR_WAIT = 5.0


class Broadcaster:
    """Publishes health (``{prefix}/health/{site}/{asset}``) and advice (``.../reroute/...``).

    Parameters
    ----------
    publisher
        The MQTT connection; None publishes nothing (offline use, tests of pure logic).
    prefix
        Topic prefix.
    instance
        This instance's name, in each health message (whose asset it is).
    """

    def __init__(self, publisher: Publisher | None, prefix: str, instance: str) -> None:
        self.publisher = publisher
        self.prefix = prefix
        self.instance = instance
        self._health: dict[AssetKey, AssetHealth] = {}
        self._advice: dict[AssetKey, dict[str, Any] | None] = {}
        #: The last clear published, until `settle` confirms the broker has it.
        self._unsettled: str | None = None

    def stage(
        self, health: Iterable[AssetHealth], advice: Mapping[AssetKey, dict[str, Any] | None]
    ) -> None:
        """Hold changes until `publish` (after their save); a later change replaces one held."""
        self._health.update({(h.site, h.asset): h for h in health})
        self._advice.update(advice)

    def publish(self) -> None:
        """Publish what is held: the save that covers it succeeded."""
        for h in self._health.values():
            self.health(h)
        for key, payload in self._advice.items():
            self.advice(key, payload)
        self._health.clear()
        self._advice.clear()

    def drop(self, keys: Collection[AssetKey]) -> None:
        """Forget the changes held for these assets: they are not ours to publish any more."""
        for key in keys:
            self._health.pop(key, None)
            self._advice.pop(key, None)

    def clear(self, health: Sequence[AssetKey], advice: Sequence[AssetKey]) -> None:
        """Clear these assets' retained health and advice (empty retained messages).

        `settle` then waits until the broker has them.
        """
        if self.publisher is None:
            return
        topics = [f"{self.prefix}/health/{s}/{a}" for s, a in health]
        topics += [f"{self.prefix}/reroute/{s}/{a}" for s, a in advice]
        for topic in topics:
            self.publisher.publish(topic, b"", retain=True)
        if topics:
            self._unsettled = topics[-1]

    def settle(self) -> None:
        """Wait until the broker has the clears: the last one again, confirmed by its PUBACK.

        The broker handles a connection's messages in order, so once it acknowledged this one
        it has the clears before it, and the asset's next holder, which publishes only once
        it reads the asset, cannot be cleared by a late message of ours. Waits at most
        `CLEAR_WAIT` s; never under the engine's lock, since the PUBACK comes on the thread
        that hands the engine the other instances' health.
        """
        topic, self._unsettled = self._unsettled, None
        if topic is None or self.publisher is None:
            return
        try:
            self.publisher.publish_confirmed(topic, b"", CLEAR_WAIT)
        except DeliveryError as exc:
            log.warning("clearing the health of assets given up: %s", exc)

    def health(self, h: AssetHealth) -> None:
        """Publish one asset's health, retained."""
        if self.publisher is not None:
            topic = f"{self.prefix}/health/{h.site}/{h.asset}"
            payload = {**h.payload(), "instance": self.instance}
            self.publisher.publish(topic, orjson.dumps(payload), retain=True)

    def advice(self, key: AssetKey, advice: Mapping[str, Any] | None) -> None:
        """Publish one asset's advice, retained; None clears it (an empty retained message)."""
        if self.publisher is not None:
            payload = b"" if advice is None else orjson.dumps(advice)
            self.publisher.publish(f"{self.prefix}/reroute/{key[0]}/{key[1]}", payload, retain=True)
