"""`common.mqtt`'s pure parts: broker and session options, subscriptions, PUBACK bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from common.backoff import backoff
from common.mqtt import Broker, Pubacks, Session, Subscription, Tls, new_client, refusal
from common.mqtt.client import connect_properties
from ingest.settings import MqttSettings


def _code(name: str, packet: int = PacketTypes.PUBACK) -> ReasonCode:
    return ReasonCode(packet, name)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("tls", "expected"),
    [(False, None), (True, Tls()), (Tls(Path("ca.pem")), Tls(Path("ca.pem")))],
    ids=["plain", "system-cas", "own-ca"],
)
def test_broker_of_turns_the_tls_flag_into_options(tls: Tls | bool, expected: Tls | None) -> None:
    """``tls=True`` means the system's CAs, a `Tls` is kept, False means no TLS."""
    assert Broker.of("h", 1, tls=tls).tls == expected


def test_broker_repr_leaves_the_password_out() -> None:
    """A broker printed in a log or a traceback does not show its password."""
    assert "s3cret" not in repr(Broker.of("h", 1, "user", "s3cret"))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"protocol": "4"}, "is not '5' or '3.1.1'"),
        ({"keepalive": 0}, "must be at least 1 second"),
        ({"persistent": True, "client_id": ""}, "requires a client_id"),
        ({"session_expiry": -1}, "session_expiry -1"),
        ({"receive_maximum": 0}, "receive_maximum 0"),
        ({"receive_maximum": 65_536}, "receive_maximum 65536"),
    ],
    ids=["protocol", "keepalive", "client-id", "expiry", "receive-min", "receive-max"],
)
def test_session_refuses_what_the_broker_would(options: dict[str, object], problem: str) -> None:
    """Invalid session options fail when built, naming the option."""
    with pytest.raises(ValueError, match=problem):
        Session(**{"client_id": "c", **options})  # type: ignore[arg-type]


def test_persistent_v5_session_sends_its_expiry_and_receive_maximum() -> None:
    """A persistent MQTT 5 session carries Session Expiry Interval and Receive Maximum."""
    session = Session("c", persistent=True, session_expiry=3600, receive_maximum=100)
    properties = connect_properties(session)
    assert properties is not None
    assert (properties.SessionExpiryInterval, properties.ReceiveMaximum) == (3600, 100)


@pytest.mark.parametrize(
    "session",
    [Session("c"), Session("c", "3.1.1", persistent=True)],
    ids=["transient", "v3.1.1"],
)
def test_other_sessions_send_no_connect_properties(session: Session) -> None:
    """Transient sessions and 3.1.1 ones (which has no properties) send none."""
    assert connect_properties(session) is None


def test_new_client_keeps_a_persistent_3_1_1_session() -> None:
    """3.1.1 persistence is paho's clean_session=False; a transient client starts clean."""
    kept = new_client(Broker(), Session("c", "3.1.1", persistent=True))
    clean = new_client(Broker(), Session("c", "3.1.1"))
    assert (kept._clean_session, clean._clean_session) == (False, True)


def test_durable_subscription_gets_retained_messages_only_when_new() -> None:
    """Subscribing again on every connect must not replay retained messages."""
    options = Subscription.durable("plant/#").options()
    assert (options.QoS, options.retainHandling) == (1, SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)


def test_refusal_is_the_first_failed_reason_code() -> None:
    """A SUBACK granting one filter and refusing another is a refusal."""
    granted, refused = (
        _code("Granted QoS 1", PacketTypes.SUBACK),
        _code("Not authorized", PacketTypes.SUBACK),
    )
    assert (refusal([granted]), refusal([granted, refused])) == (None, refused)


def test_pubacks_keep_a_refusal_until_read() -> None:
    """A refused PUBACK is read once; a later success of the same id clears a stale one."""
    pubacks = Pubacks()
    pubacks.record(7, _code("Not authorized"))
    pubacks.record(8, _code("Not authorized"))
    pubacks.record(8, _code("Success"))
    assert (pubacks.refusal(7), pubacks.refusal(7), pubacks.refusal(8)) == (
        _code("Not authorized"),
        None,
        None,
    )


@pytest.mark.parametrize(("failures", "low", "high"), [(1, 0.5, 30), (3, 0.5, 30), (40, 0.5, 30)])
def test_backoff_doubles_within_bounds_with_equal_jitter(
    failures: int, low: float, high: float
) -> None:
    """Delay number n lies between half and all of min(high, low * 2**(n-1))."""
    cap = min(high, low * 2 ** (failures - 1))
    delays = [backoff(failures, low, high) for _ in range(200)]
    assert all(cap / 2 <= d <= cap for d in delays)


def test_mqtt_settings_name_their_broker(tmp_path: Path) -> None:
    """The pipeline's mqtt settings turn into the same `Broker` the simulators use."""
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = MqttSettings(
        host="mqtt", port=8883, username="u", password="p", tls=True, ca_file=ca
    )
    assert settings.broker() == Broker("mqtt", 8883, "u", "p", Tls(ca))
