"""The MQTT receiver: alerts on ``<prefix>/alerts/{site}/{asset}`` at QoS 1, via the real broker."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from alerts.base import Notification
from alerts.errors import DeliveryError
from alerts.receivers.mqtt import MqttReceiver, MqttReceiverSettings, alert_topic


@pytest.fixture
def receiver(mqtt_publisher, unique_topic):
    """An MQTT receiver publishing under this test's prefix through the real publisher."""
    made = MqttReceiver("bus", MqttReceiverSettings(timeout=5), mqtt_publisher, unique_topic)
    yield made
    made.close()


def deliver(receiver, alerts, group=None, id="d-1"):
    receiver.notify(Notification(receiver.name, group or {}, alerts, id=id))


class RecordingPublisher:
    """A fake `Publisher` for the unit tests: records what it is asked to publish."""

    def __init__(self) -> None:
        self.confirmed: list[tuple[str, bytes, float]] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        raise AssertionError("the MQTT receiver must wait for PUBACKs")

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        self.confirmed.append((topic, payload, timeout))


@pytest.mark.integration
def test_alert_arrives_at_qos1_on_its_topic_with_the_exact_json(
    receiver, alert_subscriber, make_alert, unique_topic
):
    """A subscriber gets the alert JSON on <prefix>/alerts/<site>/<asset> at QoS 1."""
    alert = make_alert()
    deliver(receiver, [alert])
    [message] = alert_subscriber.wait(1)
    assert message.topic == f"{unique_topic}/alerts/{alert['site']}/{alert['asset']}"
    assert message.qos == 1
    assert orjson.loads(message.payload) == alert
    assert message.payload == orjson.dumps(alert)


@pytest.mark.integration
def test_group_is_one_message_per_alert_in_order(receiver, alert_subscriber, make_alert):
    """Each alert of a group is its own message, in the notification's order."""
    alerts = [make_alert(), make_alert(), make_alert()]
    deliver(receiver, alerts, group={"site": alerts[0]["site"]})
    messages = alert_subscriber.wait(3)
    assert [orjson.loads(m.payload) for m in messages] == alerts
    assert [m.topic.rsplit("/", 1)[1] for m in messages] == [a["asset"] for a in alerts]


@pytest.mark.integration
def test_alerts_are_not_retained(receiver, alert_subscriber, make_alert):
    """Alert messages are events, not state: the retain flag is off."""
    deliver(receiver, [make_alert()])
    [message] = alert_subscriber.wait(1)
    assert not message.retain


@pytest.mark.integration
def test_site_wide_alert_goes_to_the_star_asset(
    receiver, alert_subscriber, make_alert, unique_topic
):
    """A site-wide alert is published on <prefix>/alerts/<site>/*."""
    alert = make_alert(asset="*")
    deliver(receiver, [alert])
    [message] = alert_subscriber.wait(1)
    assert message.topic == f"{unique_topic}/alerts/{alert['site']}/*"


@pytest.mark.integration
def test_broker_unreachable_is_retryable(publisher_for, closed_port, make_alert, unique_topic):
    """With no broker to acknowledge, the delivery fails retryably."""
    away = publisher_for("127.0.0.1", closed_port, connected=False)
    receiver = MqttReceiver("bus", MqttReceiverSettings(timeout=0.2), away, unique_topic)
    with pytest.raises(DeliveryError) as info:
        deliver(receiver, [make_alert()])
    assert info.value.retryable


@pytest.mark.integration
def test_close_leaves_the_publisher_connected(receiver, mqtt_publisher):
    """The publisher belongs to the wiring: closing the receiver (twice) does not close it."""
    receiver.close()
    receiver.close()
    assert mqtt_publisher.connected


def test_alert_without_a_usable_site_is_not_retryable_and_publishes_nothing(make_alert):
    """An alert whose site cannot be a topic level fails for good, before anything is sent."""
    publisher = RecordingPublisher()
    receiver = MqttReceiver("bus", MqttReceiverSettings(), publisher)
    with pytest.raises(DeliveryError) as info:
        deliver(receiver, [make_alert(), {**make_alert(), "site": "a/b"}])
    assert not info.value.retryable
    assert publisher.confirmed == []


def test_publishes_with_the_configured_timeout(make_alert):
    """Every publish waits for its PUBACK up to the settings' timeout."""
    publisher = RecordingPublisher()
    deliver(MqttReceiver("bus", MqttReceiverSettings(timeout=2.5), publisher), [make_alert()])
    assert [timeout for _, _, timeout in publisher.confirmed] == [2.5]


def test_prefix_defaults_to_meshwatch():
    """Without a prefix alerts go under meshwatch/alerts/."""
    assert alert_topic("meshwatch", {"site": "s", "asset": "a"}) == "meshwatch/alerts/s/a"
    publisher = RecordingPublisher()
    deliver(MqttReceiver("bus", MqttReceiverSettings(), publisher), [{"site": "s", "asset": "a"}])
    assert publisher.confirmed[0][0] == "meshwatch/alerts/s/a"


def test_notify_after_close_is_retryable(make_alert):
    """A closed receiver refuses work in a way that keeps the notification queued."""
    receiver = MqttReceiver("bus", MqttReceiverSettings(), RecordingPublisher())
    receiver.close()
    with pytest.raises(DeliveryError) as info:
        deliver(receiver, [make_alert()])
    assert info.value.retryable


def test_settings_refuse_a_non_positive_timeout():
    """A PUBACK timeout must be above 0 s."""
    with pytest.raises(ValidationError):
        MqttReceiverSettings(timeout=0)
