"""The checks every receiver passes, each against its real far end (river's check_estimator).

A `Kit` wraps one receiver with what its far end saw (the alert ids, in arrival order) and a
way to build the same receiver pointed at a far end that is down. The log receiver has no far
end that can be away, so it sits out the unreachable check only.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import orjson
import pytest
from support import wait_for

from alerts.base import Notification, Receiver
from alerts.errors import DeliveryError
from alerts.receivers import (
    EmailReceiver,
    EmailSettings,
    LogReceiver,
    MqttReceiver,
    MqttReceiverSettings,
    WebhookReceiver,
    WebhookSettings,
)

_ALERT_ID = re.compile(r"^Alert id: (\S+)\r?$", re.MULTILINE)  # mail lines end in CRLF


@dataclass
class Kit:
    """A receiver under test, what its far end saw, and a twin whose far end is down."""

    receiver: Receiver
    seen_now: Callable[[], list[str]]
    unreachable: Callable[[], Receiver] | None = None
    made: list[Receiver] = field(default_factory=list)

    def seen(self, count: int) -> list[str]:
        """The alert ids the far end got, once there are `count` (some far ends lag)."""
        wait_for(lambda: len(self.seen_now()) >= count, 10, f"{count} alerts delivered")
        return self.seen_now()

    def down(self) -> Receiver:
        """The same kind of receiver, its far end unreachable."""
        assert self.unreachable is not None
        receiver = self.unreachable()
        self.made.append(receiver)
        return receiver


def _ids(body: Any) -> list[str]:
    """The alert ids of a webhook body: one alert object, or an array of them."""
    items = body if isinstance(body, list) else [body]
    return [str(item["id"]) for item in items]


def _text(content: bytes) -> str:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


def _log_kit(request: pytest.FixtureRequest) -> Kit:
    caplog = request.getfixturevalue("caplog")
    caplog.set_level(logging.DEBUG, logger="meshwatch.alerts")
    return Kit(
        LogReceiver("console"),
        lambda: [r.alert_id for r in caplog.records if r.name == "meshwatch.alerts"],
    )


def _webhook_kit(request: pytest.FixtureRequest) -> Kit:
    server = request.getfixturevalue("http_server")
    port = request.getfixturevalue("closed_port")
    return Kit(
        WebhookReceiver("maintenance", WebhookSettings(url=server.url, secret="s")),
        lambda: [i for r in server.requests for i in _ids(orjson.loads(r.body))],
        lambda: WebhookReceiver("down", WebhookSettings(url=f"http://127.0.0.1:{port}/")),
    )


def _email_kit(request: pytest.FixtureRequest) -> Kit:
    server = request.getfixturevalue("smtp_server")
    ca_file = request.getfixturevalue("ca_file")
    port = request.getfixturevalue("closed_port")
    common = {"sender": "meshwatch@example.com", "to": ["oncall@example.com"], "timeout": 5.0}
    settings = EmailSettings(
        host=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        ca_file=ca_file,
        **common,
    )
    return Kit(
        EmailReceiver("oncall", settings),
        lambda: [i for m in server.mails for i in _ALERT_ID.findall(_text(m.content))],
        lambda: EmailReceiver("down", EmailSettings(host="127.0.0.1", port=port, **common)),
    )


def _mqtt_kit(request: pytest.FixtureRequest) -> Kit:
    subscriber = request.getfixturevalue("alert_subscriber")
    publisher = request.getfixturevalue("mqtt_publisher")
    publisher_for = request.getfixturevalue("publisher_for")
    port = request.getfixturevalue("closed_port")
    prefix = subscriber.prefix
    settings = MqttReceiverSettings(timeout=5)
    return Kit(
        MqttReceiver("bus", settings, publisher, prefix),
        lambda: [orjson.loads(m.payload)["id"] for m in subscriber.messages],
        lambda: MqttReceiver(
            "down", settings, publisher_for("127.0.0.1", port, connected=False), prefix
        ),
    )


_KITS = {"log": _log_kit, "webhook": _webhook_kit, "email": _email_kit, "mqtt": _mqtt_kit}
_REMOTE = [pytest.param(name, marks=pytest.mark.integration) for name in _KITS if name != "log"]
_ALL = [pytest.param("log"), *_REMOTE]


@pytest.fixture
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    """The kit of the receiver named by the test's parameter; its receivers closed after."""
    made = _KITS[request.param](request)
    yield made
    for receiver in [made.receiver, *made.made]:
        receiver.close()


def notify(receiver: Receiver, alerts, group=None) -> None:
    receiver.notify(Notification(receiver.name, group or {}, alerts, id="d-1"))


@pytest.mark.parametrize("kit", _ALL, indirect=True)
def test_delivers_a_single_alert(kit, make_alert):
    """One alert reaches the far end, once."""
    alert = make_alert()
    notify(kit.receiver, [alert])
    assert kit.seen(1) == [alert["id"]]


@pytest.mark.parametrize("kit", _ALL, indirect=True)
def test_delivers_a_group(kit, make_alert):
    """Every alert of a group reaches the far end, each once."""
    alerts = [make_alert(), make_alert(), make_alert()]
    notify(kit.receiver, alerts, group={"site": alerts[0]["site"]})
    assert sorted(kit.seen(3)) == sorted(a["id"] for a in alerts)


@pytest.mark.parametrize("kit", _ALL, indirect=True)
def test_empty_notification_delivers_nothing(kit, make_alert):
    """A notification without alerts sends nothing and does not fail."""
    notify(kit.receiver, [])
    alert = make_alert()
    notify(kit.receiver, [alert])
    assert kit.seen(1) == [alert["id"]]


@pytest.mark.parametrize("kit", _REMOTE, indirect=True)
def test_unreachable_far_end_is_retryable(kit, make_alert):
    """A far end that is down makes a DeliveryError that may pass later."""
    with pytest.raises(DeliveryError) as info:
        notify(kit.down(), [make_alert()])
    assert info.value.retryable


@pytest.mark.parametrize("kit", _ALL, indirect=True)
def test_close_is_idempotent(kit):
    """close() may be called twice."""
    kit.receiver.close()
    kit.receiver.close()
