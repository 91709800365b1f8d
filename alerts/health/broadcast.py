"""Publishing the fleet's state: the retained health map and reroute advice.

Changes are published only after the state that holds them is saved, so what the fleet sees
never runs ahead of what a restart would remember; a change whose save failed waits for the
next save that succeeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from alerts.base import AssetKey, Publisher
from alerts.health.status import AssetHealth


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
