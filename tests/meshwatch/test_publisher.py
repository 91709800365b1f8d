"""`MqttPublisher`, the alerts' MQTT connection, against a real mosquitto."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from remotekit import ClientContext
from support import publish, wait_for

from alerts.connection import MqttPublisher
from alerts.errors import DeliveryError
from ingest.settings import MqttSettings
from meshwatch.localservers import Mosquitto, free_port, make_test_certificates


def _settings(broker: Mosquitto, prefix: str) -> MqttSettings:
    """Settings of a pipeline with its own client id and topics, reconnecting within 2 s."""
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        prefix=prefix,
        client_id=f"mw-{prefix}",
        reconnect_max=2,
    )


class _Recorder:
    """The publisher's consumer: keeps what on_message got and counts on_connect calls."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connects = 0

    def on_message(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))

    def on_connect(self) -> None:
        self.connects += 1

    def publisher(self, settings: MqttSettings) -> MqttPublisher:
        """A publisher subscribed to the settings' command topics, reporting here."""
        return MqttPublisher(
            settings,
            subscriptions=[f"{settings.prefix}/cmd/#"],
            on_message=self.on_message,
            on_connect=self.on_connect,
        )

    def wait_subscribed(self, publisher: MqttPublisher, connects: int = 1) -> None:
        """Wait for connect number `connects`, then until a probe through it comes back.

        The probe travels on the publisher's own connection after its SUBSCRIBE, so its
        return shows the subscription is in place.
        """
        wait_for(lambda: self.connects >= connects, 20, f"connect number {connects}")
        probe = (f"{publisher.settings.prefix}/cmd/probe", f"probe {connects}".encode())
        publisher.publish_confirmed(*probe, timeout=10)
        wait_for(lambda: probe in self.messages, 10, "the probe back")


class _Watcher(ClientContext):
    """A plain paho subscriber on `topic` that keeps every message it gets."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = lambda client, userdata, msg: self.messages.append(msg)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        wait_for(subscribed.is_set, 10, f"SUBACK for {topic}")


def _retained(broker: Mosquitto, topic: str) -> bytes | None:
    """The retained message on `topic`, as a new subscriber gets it (None when none in 1 s)."""
    with _Watcher(broker, topic) as watcher:
        deadline = time.monotonic() + 1.0
        while not watcher.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        return bytes(watcher.messages[0].payload) if watcher.messages else None


@pytest.mark.integration
def test_publish_confirmed_delivers_at_qos_1(mosquitto: Mosquitto, unique_topic: str) -> None:
    """After publish_confirmed returns, a subscriber gets the message at QoS 1."""
    publisher = MqttPublisher(_settings(mosquitto, unique_topic))
    publisher.start()
    try:
        wait_for(lambda: publisher.connected, 20, "the publisher connected")
        with _Watcher(mosquitto, f"{unique_topic}/alerts/#") as watcher:
            publisher.publish_confirmed(f"{unique_topic}/alerts/s/a", b'{"id": "1"}', timeout=10)
            wait_for(lambda: bool(watcher.messages), 10, "the alert delivered")
            [message] = watcher.messages
    finally:
        publisher.close()
    assert (message.topic, message.payload, message.qos) == (
        f"{unique_topic}/alerts/s/a",
        b'{"id": "1"}',
        1,
    )


@pytest.mark.integration
def test_publish_confirmed_with_the_broker_down_raises_a_retryable_error_in_time(
    fresh_mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Broker stopped: publish_confirmed raises a retryable DeliveryError within its timeout."""
    publisher = MqttPublisher(_settings(fresh_mosquitto, unique_topic))
    publisher.start()
    try:
        wait_for(lambda: publisher.connected, 20, "the publisher connected")
        fresh_mosquitto.stop()
        wait_for(lambda: not publisher.connected, 20, "the publisher to notice")
        started = time.monotonic()
        with pytest.raises(DeliveryError) as err:
            publisher.publish_confirmed(f"{unique_topic}/alerts/s/a", b"{}", timeout=3)
        elapsed = time.monotonic() - started
    finally:
        publisher.close()
    assert err.value.retryable
    assert elapsed < 3


def test_start_and_publish_never_raise_without_a_broker() -> None:
    """Nothing listens on the port: start, publish and close return normally."""
    publisher = MqttPublisher(MqttSettings(host="127.0.0.1", port=free_port()))
    publisher.start()
    publisher.publish("meshwatch/health/s/a", b"{}", retain=True)
    publisher.close()
    assert not publisher.connected


def test_publish_to_a_topic_paho_refuses_logs_instead_of_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wildcard in the topic: publish logs an error naming the topic and returns."""
    publisher = MqttPublisher(MqttSettings(host="127.0.0.1", port=free_port()))
    with caplog.at_level(logging.ERROR, logger="alerts.connection"):
        publisher.publish("meshwatch/health/#", b"{}")
    publisher.close()
    assert [r.getMessage() for r in caplog.records] == [
        "cannot publish to meshwatch/health/#: Publish topic cannot contain wildcards."
    ]


@pytest.mark.integration
def test_retained_publish_is_seen_by_a_later_subscriber(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """A retained publish is what a subscriber that comes later gets first."""
    topic = f"{unique_topic}/health/s/a"
    publisher = MqttPublisher(_settings(mosquitto, unique_topic))
    publisher.start()
    try:
        publisher.publish(topic, b'{"status": "ok"}', retain=True)
        wait_for(lambda: _retained(mosquitto, topic) == b'{"status": "ok"}', 20, "retained")
    finally:
        publisher.close()


@pytest.mark.integration
def test_publish_while_the_broker_is_down_goes_out_when_it_is_back(
    fresh_mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Paho keeps a publish made during an outage and sends it after the reconnect."""
    topic = f"{unique_topic}/health/s/a"
    recorder = _Recorder()
    publisher = recorder.publisher(_settings(fresh_mosquitto, unique_topic))
    publisher.start()
    try:
        wait_for(lambda: recorder.connects == 1, 20, "the first connect")
        fresh_mosquitto.stop()
        wait_for(lambda: not publisher.connected, 20, "the publisher to notice")
        publisher.publish(topic, b"during the outage", retain=True)
        fresh_mosquitto.start()
        wait_for(lambda: recorder.connects == 2, 20, "the reconnect")
        wait_for(lambda: _retained(fresh_mosquitto, topic) == b"during the outage", 20, "it")
    finally:
        publisher.close()


@pytest.mark.integration
def test_subscriptions_deliver_to_on_message(mosquitto: Mosquitto, unique_topic: str) -> None:
    """A command another client publishes reaches on_message with its topic and payload."""
    recorder = _Recorder()
    publisher = recorder.publisher(_settings(mosquitto, unique_topic))
    publisher.start()
    try:
        recorder.wait_subscribed(publisher)
        publish(mosquitto, [(f"{unique_topic}/cmd/silence", b'{"action": "list"}')])
        command = (f"{unique_topic}/cmd/silence", b'{"action": "list"}')
        wait_for(lambda: command in recorder.messages, 10, "the command")
    finally:
        publisher.close()


@pytest.mark.integration
def test_subscriptions_are_renewed_after_the_broker_lost_the_session(
    fresh_mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Broker restarted without its saved sessions: commands still arrive after the reconnect."""
    recorder = _Recorder()
    publisher = recorder.publisher(_settings(fresh_mosquitto, unique_topic))
    publisher.start()
    try:
        recorder.wait_subscribed(publisher)
        fresh_mosquitto.stop()
        (fresh_mosquitto.workdir / "mosquitto.db").unlink()
        fresh_mosquitto.start()
        recorder.wait_subscribed(publisher, connects=2)
        publish(fresh_mosquitto, [(f"{unique_topic}/cmd/ack", b'{"id": "a1"}')])
        command = (f"{unique_topic}/cmd/ack", b'{"id": "a1"}')
        wait_for(lambda: command in recorder.messages, 10, "the command after the restart")
    finally:
        publisher.close()


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_command_sent_while_stopped_is_delivered_on_the_next_start(
    mosquitto: Mosquitto, unique_topic: str, protocol: str
) -> None:
    """The session outlives the publisher: a command queued meanwhile arrives on restart."""
    settings = _settings(mosquitto, unique_topic).model_copy(update={"protocol": protocol})
    first = _Recorder()
    publisher = first.publisher(settings)
    publisher.start()
    try:
        first.wait_subscribed(publisher)
    finally:
        publisher.close()
    publish(mosquitto, [(f"{unique_topic}/cmd/silence", b"queued while stopped")])
    second = _Recorder()
    publisher = second.publisher(settings)
    publisher.start()
    try:
        command = (f"{unique_topic}/cmd/silence", b"queued while stopped")
        wait_for(lambda: command in second.messages, 20, "the queued command")
    finally:
        publisher.close()


@pytest.mark.integration
def test_on_connect_runs_on_each_connect(fresh_mosquitto: Mosquitto, unique_topic: str) -> None:
    """A broker restart means a second connect, and a second on_connect call."""
    recorder = _Recorder()
    publisher = recorder.publisher(_settings(fresh_mosquitto, unique_topic))
    publisher.start()
    try:
        wait_for(lambda: recorder.connects == 1, 20, "the first connect")
        fresh_mosquitto.restart()
        wait_for(lambda: recorder.connects == 2, 20, "the reconnect")
    finally:
        publisher.close()


@pytest.mark.integration
def test_a_handler_that_raises_is_logged_and_delivery_goes_on(
    mosquitto: Mosquitto, unique_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """on_message raising for one message: it is logged, and the next message still comes."""
    recorder = _Recorder()

    def handle(topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise ValueError("boom")
        recorder.on_message(topic, payload)

    settings = _settings(mosquitto, unique_topic)
    publisher = MqttPublisher(
        settings,
        subscriptions=[f"{unique_topic}/cmd/#"],
        on_message=handle,
        on_connect=recorder.on_connect,
    )
    publisher.start()
    try:
        with caplog.at_level(logging.ERROR, logger="alerts.connection"):
            recorder.wait_subscribed(publisher)
            topic = f"{unique_topic}/cmd/ack"
            publish(mosquitto, [(topic, b"boom"), (topic, b"after")])
            wait_for(lambda: (topic, b"after") in recorder.messages, 10, "the next message")
    finally:
        publisher.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"handling a message on {topic} failed; it is acknowledged and dropped"
    ]


@pytest.mark.integration
def test_publish_confirmed_on_the_mqtt_thread_is_refused(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Called from on_message, publish_confirmed raises a non-retryable error at once."""
    recorder = _Recorder()
    errors: list[DeliveryError] = []

    def handle(topic: str, payload: bytes) -> None:
        recorder.on_message(topic, payload)
        if payload == b"reply":
            try:
                publisher.publish_confirmed(f"{unique_topic}/cmd/result", b"{}", timeout=5)
            except DeliveryError as exc:
                errors.append(exc)

    publisher = MqttPublisher(
        _settings(mosquitto, unique_topic),
        subscriptions=[f"{unique_topic}/cmd/#"],
        on_message=handle,
        on_connect=recorder.on_connect,
    )
    publisher.start()
    try:
        recorder.wait_subscribed(publisher)
        publish(mosquitto, [(f"{unique_topic}/cmd/ack", b"reply")])
        wait_for(lambda: bool(errors), 10, "the refusal")
    finally:
        publisher.close()
    assert not errors[0].retryable


@pytest.mark.integration
def test_status_is_online_while_connected_and_offline_after_close(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """The retained status of <client_id>-alerts says online, then offline after close."""
    settings = _settings(mosquitto, unique_topic)
    topic = f"{unique_topic}/status/{settings.client_id}-alerts"

    def status() -> object:
        payload = _retained(mosquitto, topic)
        return orjson.loads(payload)["status"] if payload else None

    publisher = MqttPublisher(settings)
    publisher.start()
    try:
        wait_for(lambda: status() == "online", 20, "status online")
    finally:
        publisher.close()
    assert status() == "offline"


@pytest.mark.integration
def test_close_is_idempotent(mosquitto: Mosquitto, unique_topic: str) -> None:
    """A second close does nothing and raises nothing; the publisher is disconnected."""
    publisher = MqttPublisher(_settings(mosquitto, unique_topic))
    publisher.start()
    wait_for(lambda: publisher.connected, 20, "the publisher connected")
    publisher.close()
    publisher.close()
    assert not publisher.connected


@pytest.mark.integration
@pytest.mark.usefixtures("mosquitto")  # skips (or fails in CI) without mosquitto, as conftest says
def test_publisher_connects_over_tls_with_the_pipelines_settings(
    tmp_path: Path, unique_topic: str
) -> None:
    """A broker that speaks only TLS: the publisher verifies it with mqtt.ca_file and publishes."""
    tls = make_test_certificates(tmp_path / "certs")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        settings = MqttSettings(
            host="localhost", port=broker.port, tls=True, ca_file=tls.ca, prefix=unique_topic
        )
        publisher = MqttPublisher(settings)
        publisher.start()
        try:
            wait_for(lambda: publisher.connected, 20, "the publisher connected over TLS")
            publisher.publish_confirmed(f"{unique_topic}/alerts/s/a", b"{}", timeout=10)
        finally:
            publisher.close()
