"""What the demo shows while it runs: the fleet as a maintenance tool sees it over MQTT.

`FleetWatcher` subscribes to the pipeline's health map, alerts and reroute advice, exactly as
any tool on the broker would; `render` turns what it saw into a rich view.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from common import mqtt as transport
from meshwatch.tables import styled

#: Alerts shown in the live view (the newest); all of them are kept for the summary.
_SHOWN_ALERTS = 8


class FleetWatcher:
    """A paho subscriber to ``<prefix>/health/#``, ``alerts/#`` and ``reroute/#``.

    Parameters
    ----------
    host, port
        The broker.
    prefix
        The pipeline's topic prefix.
    protocol
        ``"5"`` or ``"3.1.1"`` (the demo's amqtt speaks only that).
    """

    def __init__(
        self, host: str, port: int, prefix: str, protocol: transport.Protocol = "5"
    ) -> None:
        self.prefix = prefix
        self.health: dict[tuple[str, str], dict[str, Any]] = {}
        self.advice: dict[tuple[str, str], dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self._recent: deque[dict[str, Any]] = deque(maxlen=_SHOWN_ALERTS)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._protocol: transport.Protocol = protocol
        broker = transport.Broker(host, port)
        session = transport.Session(f"meshwatch-demo-{uuid.uuid4().hex[:8]}", protocol)
        self._client = transport.new_client(broker, session)
        transport.bind(
            self._client,
            connected=self._on_connect,
            subscribed=lambda mid, reason_codes: self._ready.set(),
        )
        self._client.on_message = self._on_message
        transport.connect(self._client, broker, session)
        self._client.loop_start()
        if not self._ready.wait(10):
            self.close()
            raise TimeoutError(f"no SUBACK from the broker at {host}:{port} within 10 s")

    def _on_connect(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        topics = [f"{self.prefix}/{t}/#" for t in ("health", "alerts", "reroute")]
        subscriptions = [transport.Subscription(topic) for topic in topics]
        transport.subscribe(self._client, subscriptions, self._protocol)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 4:
            return
        what, key = parts[-3], (parts[-2], parts[-1])
        body = orjson.loads(msg.payload) if msg.payload else None
        with self._lock:
            if what == "health" and body is not None:
                self.health[key] = body
            elif what == "reroute":
                if body is None:
                    self.advice.pop(key, None)
                else:
                    self.advice[key] = body
            elif what == "alerts" and body is not None:
                self.alerts.append(body)
                self._recent.append(body)

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Health entries, the newest alerts and the standing advice, copied."""
        with self._lock:
            return list(self.health.values()), list(self._recent), list(self.advice.values())

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


def render(watcher: FleetWatcher, footer: str) -> RenderableType:
    """The live view: the fleet's health, the latest alerts and the reroute advice."""
    health, recent, advice = watcher.snapshot()
    table = Table(title="fleet health", expand=False)
    for column in ("site", "asset", "kind", "status", "score", "since"):
        table.add_column(column)
    for h in sorted(health, key=lambda h: (h["site"], h["asset"])):
        status = str(h["status"])
        score = h.get("score")
        table.add_row(
            h["site"],
            h["asset"],
            h.get("kind") or "-",
            styled(status),
            "-" if score is None else f"{score:.2f}",
            str(h.get("since", ""))[11:19],
        )
    lines: list[RenderableType] = [table, Text("latest alerts", style="bold")]
    for a in reversed(recent):
        style = "red" if a["state"] == "firing" else "green"
        lines.append(
            Text(
                f"  {a['state']:8} {a['severity']:8} {a['site']}/{a['asset']} {a['rule']}: "
                f"{a['message']}",
                style=style,
            )
        )
    if not recent:
        lines.append(Text("  none yet"))
    lines.append(Text("reroute advice", style="bold"))
    for adv in advice:
        names = ", ".join(f"{c['site']}/{c['asset']}" for c in adv["candidates"]) or "none"
        lines.append(Text(f"  {adv['site']}/{adv['asset']} ({adv['status']}) -> {names}"))
    if not advice:
        lines.append(Text("  none"))
    lines.append(Text(footer, style="dim"))
    return Group(*lines)
