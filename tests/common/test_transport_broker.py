"""`common.mqtt` against a real mosquitto: publish-confirmed, resubscribe after a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from support import publish, wait_for

from common.mqtt import (
    Broker,
    Pubacks,
    PublishError,
    Session,
    Subscription,
    bind,
    connect,
    new_client,
    publish_confirmed,
    release,
    subscribe,
)
from meshwatch.localservers import Mosquitto


class _Client:
    """A common.mqtt client on paho's thread that subscribes on every connect and keeps messages."""

    def __init__(self, broker: Mosquitto, topic_filter: str) -> None:
        self.broker = Broker(broker.host, broker.port)
        self.topic_filter = topic_filter
        self.pubacks = Pubacks()
        self.messages: list[tuple[str, bytes]] = []
        self.subacks = 0
        self.connected = threading.Event()
        session = Session(f"mw-test-{topic_filter.replace('/', '-')}", persistent=True)
        self.client = new_client(self.broker, session)
        self.client.reconnect_delay_set(1, 1)
        bind(
            self.client,
            connected=self._connected,
            subscribed=self._subscribed,
            published=self.pubacks.record,
            disconnected=lambda reason_code: self.connected.clear(),
        )
        self.client.on_message = lambda _c, _u, msg: self.messages.append(
            (msg.topic, bytes(msg.payload))
        )
        connect(self.client, self.broker, session, background=True)
        self.client.loop_start()

    def _connected(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        subscribe(self.client, [Subscription.durable(self.topic_filter)], "5")
        self.connected.set()

    def _subscribed(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        self.subacks += 1

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        publish_confirmed(
            self.client,
            self.pubacks,
            topic,
            payload,
            timeout=timeout,
            broker=self.broker.describe(),
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        release(self.client)


@pytest.fixture
def client_on() -> Iterator[Callable[[Mosquitto, str], _Client]]:
    """Make clients subscribed to a topic filter, closed after the test."""
    made: list[_Client] = []

    def make(broker: Mosquitto, topic_filter: str) -> _Client:
        made.append(_Client(broker, topic_filter))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.mark.integration
def test_publish_confirmed_returns_once_the_broker_has_the_message(
    mosquitto: Mosquitto, unique_topic: str, client_on: Callable[[Mosquitto, str], _Client]
) -> None:
    """A confirmed publish returns after its PUBACK, and the message reaches a subscriber."""
    client = client_on(mosquitto, f"{unique_topic}/#")
    wait_for(lambda: client.subacks >= 1, 20, "the subscription")
    client.publish_confirmed(f"{unique_topic}/a", b"one", timeout=10)
    wait_for(lambda: (f"{unique_topic}/a", b"one") in client.messages, 10, "the message back")


@pytest.mark.integration
def test_publish_confirmed_without_a_puback_is_a_retryable_error(
    fresh_mosquitto: Mosquitto, unique_topic: str, client_on: Callable[[Mosquitto, str], _Client]
) -> None:
    """Broker gone: the confirmed publish raises a retryable `PublishError`."""
    client = client_on(fresh_mosquitto, f"{unique_topic}/#")
    wait_for(client.connected.is_set, 20, "the connection")
    fresh_mosquitto.stop()
    wait_for(lambda: not client.connected.is_set(), 20, "the client to notice")
    with pytest.raises(PublishError) as err:
        client.publish_confirmed(f"{unique_topic}/a", b"lost", timeout=1)
    assert err.value.retryable


@pytest.mark.integration
def test_subscription_is_renewed_after_the_broker_lost_the_session(
    fresh_mosquitto: Mosquitto, unique_topic: str, client_on: Callable[[Mosquitto, str], _Client]
) -> None:
    """Broker restarted without its saved sessions: messages flow again after the reconnect."""
    client = client_on(fresh_mosquitto, f"{unique_topic}/#")
    wait_for(lambda: client.subacks >= 1, 20, "the first subscription")
    fresh_mosquitto.stop()
    (fresh_mosquitto.workdir / "mosquitto.db").unlink()
    fresh_mosquitto.start()
    wait_for(lambda: client.subacks >= 2, 30, "the subscription after the restart")
    publish(fresh_mosquitto, [(f"{unique_topic}/after", b"restart")])
    wait_for(lambda: (f"{unique_topic}/after", b"restart") in client.messages, 10, "the message")
