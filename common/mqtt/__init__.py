"""The MQTT transport: the one place a paho client is built, connected and driven.

- `options`: where to connect (`Broker`, `Tls`) and the session (`Session`).
- `client`: `new_client`, `connect`, `bind` (hooks, TCP_NODELAY), `subscribe`, fast acks.
- `confirm`: `publish_confirmed`, a QoS 1 publish that waits for its PUBACK.

Reconnect delays come from `common.backoff`. The subscriber's manual acks, the alerts'
connection and the simulators all build their clients here.
"""

from __future__ import annotations

from common.mqtt.client import (
    Subscription,
    bind,
    connect,
    new_client,
    refusal,
    release,
    send_pubacks,
    set_nodelay,
    set_reconnect_backoff,
    subscribe,
)
from common.mqtt.confirm import Pubacks, PublishError, publish_confirmed
from common.mqtt.options import Broker, Protocol, Session, Tls

__all__ = [
    "Broker",
    "Protocol",
    "Pubacks",
    "PublishError",
    "Session",
    "Subscription",
    "Tls",
    "bind",
    "connect",
    "new_client",
    "publish_confirmed",
    "refusal",
    "release",
    "send_pubacks",
    "set_nodelay",
    "set_reconnect_backoff",
    "subscribe",
]
