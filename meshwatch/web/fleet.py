"""The live fleet: the retained health map and reroute advice, kept from the broker.

`Fleet` holds the last known state and tells subscribers (the ``/events`` streams) of each
change; `FleetFeed` is the MQTT subscription that fills it, on paho's thread, reconnecting
by itself. While the broker is away the fleet keeps its last state and says so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from common import mqtt as transport
from ingest.settings import MqttSettings

log = logging.getLogger(__name__)

#: The statuses the pipeline publishes (`alerts.health.status.Status`), and ours for the rest.
STATUSES = ("critical", "offline", "warning", "maintenance", "ok", "unknown")
# Events queued per open page before it is dropped as too slow (it reconnects and reloads).
_QUEUE = 1000
# paho's reconnect delays (s): soon after the broker comes back, at most a minute apart.
_RECONNECT = (1.0, 60.0)


@dataclass(frozen=True, slots=True)
class Asset:
    """One asset's health as the page shows it (the health message of docs/design.md §3)."""

    site: str
    asset: str
    kind: str
    status: str
    since: str
    reason: str
    score: float | None
    alerts: tuple[dict[str, Any], ...]
    top_metric: str

    @classmethod
    def of(cls, doc: dict[str, Any], top_metric: str = "") -> Asset:
        """From a health message; an unknown status reads as ``unknown``."""
        status = str(doc.get("status"))
        score = doc.get("score")
        alerts = doc.get("alerts")
        return cls(
            site=str(doc["site"]),
            asset=str(doc["asset"]),
            kind=str(doc.get("kind") or ""),
            status=status if status in STATUSES else "unknown",
            since=str(doc.get("since") or ""),
            reason=str(doc.get("reason") or ""),
            score=float(score) if isinstance(score, int | float) else None,
            alerts=tuple(a for a in alerts if isinstance(a, dict))
            if isinstance(alerts, list)
            else (),
            top_metric=top_metric,
        )

    def event(self) -> dict[str, Any]:
        """The ``health`` event's data (docs/design.md §13)."""
        return {
            "site": self.site,
            "asset": self.asset,
            "status": self.status,
            "since": self.since,
            "reason": self.reason,
            "top_metric": self.top_metric,
        }


class Fleet:
    """The last known health of every asset, reroute advice and whether the broker is there.

    Updated from paho's thread; read from the server's event loop. Subscribers are asyncio
    queues that receive ``(event, data)`` pairs.
    """

    def __init__(self) -> None:
        self.assets: dict[tuple[str, str], Asset] = {}
        self.advice: dict[tuple[str, str], dict[str, Any]] = {}
        self.top_metrics: dict[tuple[str, str], str] = {}
        self.connected = False
        self._lock = threading.Lock()
        self._queues: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[tuple[str, Any]]]] = set()

    def health(self, doc: dict[str, Any]) -> None:
        """Keep a health message and tell the subscribers."""
        key = (str(doc["site"]), str(doc["asset"]))
        asset = Asset.of(doc, self.top_metrics.get(key, ""))
        with self._lock:
            self.assets[key] = asset
        self._tell("health", asset.event())

    def reroute(self, key: tuple[str, str], doc: dict[str, Any] | None) -> None:
        """Keep (or, with None, drop) an asset's reroute advice."""
        with self._lock:
            if doc is None:
                self.advice.pop(key, None)
            else:
                self.advice[key] = doc

    def alert(self, doc: dict[str, Any]) -> None:
        """Note an alert notification's top metric for its asset."""
        if doc.get("top_metric") and doc.get("state") == "firing":
            self.top_metrics[(str(doc["site"]), str(doc["asset"]))] = str(doc["top_metric"])

    def broker(self, connected: bool) -> None:
        """Note whether the broker is reachable and tell the subscribers when that changes."""
        if connected != self.connected:
            self.connected = connected
            self._tell("broker", {"connected": connected})

    def snapshot(self) -> list[Asset]:
        """Every asset, by site then name."""
        with self._lock:
            return sorted(self.assets.values(), key=lambda a: (a.site, a.asset))

    def subscribe(self) -> asyncio.Queue[tuple[str, Any]]:
        """A queue of this fleet's events for the running event loop's caller."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(_QUEUE)
        with self._lock:
            self._queues.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Stop sending events to `queue`."""
        with self._lock:
            self._queues = {(loop, q) for loop, q in self._queues if q is not queue}

    def _tell(self, event: str, data: Any) -> None:
        with self._lock:
            queues = list(self._queues)
        for loop, queue in queues:
            try:
                loop.call_soon_threadsafe(_offer, queue, (event, data))
            except RuntimeError:  # the loop closed: the server is stopping
                self.unsubscribe(queue)


def _offer(queue: asyncio.Queue[tuple[str, Any]], item: tuple[str, Any]) -> None:
    """Queue an event; a page too slow to take 1,000 of them misses this one."""
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        log.warning("an /events stream is %d events behind: dropping one", _QUEUE)


class FleetFeed:
    """Subscribes to ``<prefix>/health/#``, ``reroute/#`` and ``alerts/#``, filling `fleet`.

    A transient session with its own client id; paho's thread connects, reconnects and,
    at each connection, subscribes again (the retained health map then comes again whole).
    """

    def __init__(self, settings: MqttSettings, fleet: Fleet) -> None:
        self.settings = settings
        self.fleet = fleet
        self._broker = settings.broker()
        client_id = f"meshwatch-web-{uuid.uuid4().hex[:12]}"
        self._session = transport.Session(client_id, settings.protocol, settings.keepalive)
        self.client = transport.new_client(self._broker, self._session)
        transport.set_reconnect_backoff(self.client, *_RECONNECT)
        transport.bind(
            self.client,
            connected=self._connected,
            disconnected=lambda _code: fleet.broker(False),
            connect_failed=lambda: fleet.broker(False),
        )
        self.client.on_message = self._message
        p = settings.prefix
        self._handlers: dict[str, Callable[[list[str], bytes], None]] = {
            "health": self._health,
            "reroute": self._reroute,
            "alerts": self._alert,
        }
        self._subscriptions = [transport.Subscription(f"{p}/{t}/#") for t in self._handlers]

    def start(self) -> None:
        """Connect from paho's thread (a broker that is down is retried there)."""
        transport.connect(self.client, self._broker, self._session, background=True)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()
        transport.release(self.client)

    def _connected(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        if reason_code.is_failure:
            where = self._broker.describe()
            log.warning("the MQTT broker %s refused the console: %s", where, reason_code)
            self.fleet.broker(False)
            return
        transport.subscribe(self.client, self._subscriptions, self.settings.protocol)
        self.fleet.broker(True)

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            parts = msg.topic.split("/")
        except UnicodeDecodeError:
            return
        prefix_parts = self.settings.prefix.count("/") + 1
        rest = parts[prefix_parts:]
        handler = self._handlers.get(rest[0]) if len(rest) == 3 else None
        if handler is not None:
            handler(rest[1:], bytes(msg.payload))

    def _health(self, key: list[str], payload: bytes) -> None:
        doc = _object(payload)
        if doc is not None and "site" in doc and "asset" in doc:
            self.fleet.health(doc)

    def _reroute(self, key: list[str], payload: bytes) -> None:
        self.fleet.reroute((key[0], key[1]), _object(payload))

    def _alert(self, key: list[str], payload: bytes) -> None:
        doc = _object(payload)
        if doc is not None and "site" in doc and "asset" in doc:
            self.fleet.alert(doc)


def _object(payload: bytes) -> dict[str, Any] | None:
    """A JSON object, or None (an empty retained message, or anything else)."""
    if not payload:
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None
