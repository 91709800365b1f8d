"""The fleet beyond this instance: the health other meshwatch instances publish.

Each instance (or worker) owns a part of the fleet and publishes its assets' health,
retained, on ``{prefix}/health/{site}/{asset}`` with its ``instance`` name. Every instance
also reads those messages, so that reroute advice can name a healthy machine another
instance watches, and a site whose assets are spread over instances can still be seen
offline as a whole. An instance whose alerts connection is gone (its retained
``{prefix}/status/<instance>-alerts`` says ``offline``) is not trusted: its assets are
neither candidates nor counted as offline.

An instance that comes online is told the fleet again (`Peers.joined`): the others publish
their maps anew. A broker that sends retained messages to a subscription with wildcards
(mosquitto) makes that redundant; RabbitMQ 3.10's MQTT plugin does not send them, so a
newcomer would otherwise know only the health that changes after it subscribed.

Examples
--------
>>> peers = Peers("meshwatch-1", "meshwatch")
>>> message = b'{"site": "b", "asset": "cnc-2", "kind": "cnc", "status": "ok", "score": 0.1,'
>>> message += b' "since": "2026-01-01T00:00:00.000Z", "instance": "meshwatch-2"}'
>>> peers.hear("meshwatch/health/b/cnc-2", message)
True
>>> [(h.site, h.asset, h.status) for h in peers.live().values()]
[('b', 'cnc-2', 'ok')]
>>> peers.hear("meshwatch/status/meshwatch-2-alerts", b'{"status": "offline"}')
True
>>> peers.live()
{}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from alerts.base import ALERTS_SUFFIX, AssetKey
from alerts.health.status import AssetHealth, Status
from common.timestamps import TimestampError, parse_rfc3339
from ingest.logthrottle import ThrottledLog

log = logging.getLogger(__name__)


class _HealthMessage(BaseModel):
    """The part of a peer's health message this instance uses (docs/design.md §3)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    site: str
    asset: str
    kind: str | None = None
    status: Status
    score: float | None = None
    since: str
    instance: str


@dataclass(frozen=True, slots=True)
class SiteElsewhere:
    """A site as the other live instances see it.

    Whether all of its assets there are offline, and the first of their asset names (who
    raises a site-wide alert: the lowest name wins).
    """

    offline: bool
    first_asset: str


class Peers:
    """The health entries other live instances publish, by asset.

    Parameters
    ----------
    instance
        This instance's name (``mqtt.client_id``): its own messages are not peers'.
    prefix
        Topic prefix of the health and status messages.
    """

    def __init__(self, instance: str, prefix: str) -> None:
        self.instance = instance
        self._health_prefix = f"{prefix}/health/"
        self._status_prefix = f"{prefix}/status/"
        self._entries: dict[AssetKey, tuple[str, AssetHealth]] = {}
        self._gone: set[str] = set()
        self._online: set[str] = set()
        #: Another instance came online since the last look: it needs to hear our map.
        self.joined = False
        self._log = ThrottledLog(log)

    def hear(self, topic: str, payload: bytes) -> bool:
        """Take one health or status message; True when the fleet beyond us changed."""
        if topic.startswith(self._health_prefix):
            return self._health(topic, payload)
        if topic.startswith(self._status_prefix) and topic.endswith(ALERTS_SUFFIX):
            return self._status(topic, payload)
        return False

    def live(self) -> dict[AssetKey, AssetHealth]:
        """The entries of the instances that are up, by asset."""
        return {key: h for key, (who, h) in self._entries.items() if who not in self._gone}

    def asset_of(self, topic: str) -> AssetKey | None:
        """The asset a health message's topic names (None for any other topic)."""
        if not topic.startswith(self._health_prefix):
            return None
        site, _, asset = topic[len(self._health_prefix) :].partition("/")
        return (site, asset)

    def holder(self, key: AssetKey) -> str | None:
        """The other live instance that last published this asset's health, if one did."""
        found = self._entries.get(key)
        return None if found is None or found[0] in self._gone else found[0]

    def sites(self) -> dict[str, SiteElsewhere]:
        """Each site with assets at live peers: all of those offline or not, their first name."""
        found: dict[str, SiteElsewhere] = {}
        for (site, asset), h in sorted(self.live().items()):
            seen = found.get(site)
            offline = h.condition == "offline" and (seen is None or seen.offline)
            found[site] = SiteElsewhere(offline, seen.first_asset if seen else asset)
        return found

    def _health(self, topic: str, payload: bytes) -> bool:
        site, _, asset = topic[len(self._health_prefix) :].partition("/")
        if not payload:  # a retained message cleared: that asset is gone from the map
            return self._entries.pop((site, asset), None) is not None
        try:
            message = _HealthMessage.model_validate(orjson.loads(payload))
            since = parse_rfc3339(message.since)
        except (orjson.JSONDecodeError, ValidationError, TimestampError) as exc:
            problem = str(exc).splitlines()[0]
            self._log.warning("peer-health", "health message on %s ignored: %s", topic, problem)
            return False
        if message.instance == self.instance or (message.site, message.asset) != (site, asset):
            return False
        status = message.status
        entry = AssetHealth(site, asset, message.kind, status, status, since, score=message.score)
        self._entries[(site, asset)] = (message.instance, entry)
        return True

    def _status(self, topic: str, payload: bytes) -> bool:
        instance = topic[len(self._status_prefix) : -len(ALERTS_SUFFIX)]
        if instance == self.instance:
            return False
        try:
            status = orjson.loads(payload).get("status") if payload else "offline"
        except (orjson.JSONDecodeError, AttributeError):
            return False
        before = instance in self._gone
        if status == "online":
            self._gone.discard(instance)
            if instance not in self._online:
                self._online.add(instance)
                self.joined = True
        else:
            self._gone.add(instance)
            self._online.discard(instance)
        return before != (instance in self._gone)
