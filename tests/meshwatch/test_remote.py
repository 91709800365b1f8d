"""`meshwatch.remote`: the fleet's health and commands, through a real broker."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from remotekit import Responder, settings_for
from support import publish_retained

from ingest.settings import MqttSettings
from meshwatch.localservers import Mosquitto, free_port, make_password_file
from meshwatch.remote import MatcherError, RemoteError, check_matcher, fleet_health, request


def _health(site: str, asset: str, status: str = "ok") -> dict[str, Any]:
    return {
        "site": site,
        "asset": asset,
        "kind": "cnc-mill",
        "status": status,
        "score": 0.12,
        "since": "2026-11-25T14:00:00Z",
        "reason": "",
    }


def _silence_added(command: str, body: dict[str, Any]) -> dict[str, Any]:
    silence = {"id": "s1", "matchers": body["matchers"], "status": "active"}
    return {"ok": True, "silence": silence}


@pytest.mark.integration
def test_fleet_health_returns_every_retained_health_message(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Each asset's retained health message comes back parsed."""
    docs = [_health("plant-a", "cnc-1"), _health("plant-b", "press-2", "critical")]
    publish_retained(
        mosquitto,
        [(f"{unique_topic}/health/{d['site']}/{d['asset']}", orjson.dumps(d)) for d in docs],
    )
    fleet = fleet_health(settings_for(mosquitto, unique_topic), wait=5)
    assert sorted(fleet, key=lambda d: d["site"]) == docs


@pytest.mark.integration
def test_fleet_health_skips_cleared_and_unreadable_topics(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """An empty retained payload (a cleared topic) and non-JSON payloads are left out."""
    good = _health("plant-a", "cnc-1")
    publish_retained(
        mosquitto,
        [
            (f"{unique_topic}/health/plant-a/cnc-1", orjson.dumps(good)),
            (f"{unique_topic}/health/plant-a/cnc-2", b"not json"),
            (f"{unique_topic}/health/plant-a/cnc-3", b"[1, 2]"),
            (f"{unique_topic}/health/plant-a/cnc-4", orjson.dumps(_health("plant-a", "cnc-4"))),
            (f"{unique_topic}/health/plant-a/cnc-4", b""),
        ],
    )
    assert fleet_health(settings_for(mosquitto, unique_topic), wait=5) == [good]


@pytest.mark.integration
def test_fleet_health_of_an_empty_fleet_is_empty(mosquitto: Mosquitto, unique_topic: str) -> None:
    """No health messages under the prefix: an empty list, not an error."""
    assert fleet_health(settings_for(mosquitto, unique_topic), wait=5) == []


@pytest.mark.integration
def test_request_returns_the_pipelines_reply(mosquitto: Mosquitto, unique_topic: str) -> None:
    """The reply with the command's request_id comes back, and the body arrived intact."""
    body = {"action": "add", "matchers": ["site=plant-a"], "duration": "2h", "comment": "x"}
    with Responder(mosquitto, unique_topic, _silence_added) as responder:
        reply = request(settings_for(mosquitto, unique_topic), "silence", body, timeout=10)
    [(command, sent)] = responder.received
    assert command == "silence"
    assert sent == {**body, "request_id": sent["request_id"]}
    assert reply["request_id"] == sent["request_id"]
    assert reply["silence"]["matchers"] == ["site=plant-a"]


@pytest.mark.integration
def test_request_ignores_replies_to_other_requests(mosquitto: Mosquitto, unique_topic: str) -> None:
    """A reply carrying another request_id is not taken for ours."""

    def answer(command: str, body: dict[str, Any]) -> dict[str, Any]:
        responder.client.publish(
            f"{unique_topic}/cmd/result",
            orjson.dumps({"request_id": "someone-else", "ok": True, "mine": False}),
            qos=1,
        )
        return {"ok": True, "mine": True}

    with Responder(mosquitto, unique_topic, answer) as responder:
        reply = request(settings_for(mosquitto, unique_topic), "ack", {"id": "a1"}, timeout=10)
    assert reply["mine"] is True


@pytest.mark.integration
def test_request_raises_the_pipelines_error_when_not_ok(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """A reply with ok false raises RemoteError with the reply's error as the message."""

    def refuse(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "no alert 'a1'"}

    with Responder(mosquitto, unique_topic, refuse), pytest.raises(RemoteError) as err:
        request(settings_for(mosquitto, unique_topic), "ack", {"id": "a1"}, timeout=10)
    assert str(err.value) == "no alert 'a1'"


def _online(mosquitto: Mosquitto, prefix: str, *instances: str) -> None:
    """Retained ``online`` statuses of these instances' alerts connections."""
    publish_retained(
        mosquitto,
        [
            (f"{prefix}/status/{n}-alerts", orjson.dumps({"client_id": n, "status": "online"}))
            for n in instances
        ],
    )


@pytest.mark.integration
def test_request_takes_the_ok_reply_of_the_instance_that_holds_the_alert(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Two instances answer: the one without the alert refuses first, the holder's ok wins."""
    _online(mosquitto, unique_topic, "i1", "i2")

    def refuse(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "no open alert with id 'a1'", "instance": "i1"}

    def accept(command: str, body: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.3)  # the holder answers second
        return {"ok": True, "alert": {"id": "a1"}, "instance": "i2"}

    with Responder(mosquitto, unique_topic, refuse), Responder(mosquitto, unique_topic, accept):
        reply = request(settings_for(mosquitto, unique_topic), "ack", {"id": "a1"}, timeout=10)
    assert (reply["ok"], reply["instance"]) == (True, "i2")


@pytest.mark.integration
def test_request_refused_by_every_live_instance_raises_without_waiting_out_the_time(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Both live instances refuse: the refusal is raised once both have answered."""
    _online(mosquitto, unique_topic, "i1", "i2")

    def refuse(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "no open alert with id 'a1'"}

    start = time.monotonic()
    with (
        Responder(mosquitto, unique_topic, refuse),
        Responder(mosquitto, unique_topic, refuse),
        pytest.raises(RemoteError, match="no open alert with id 'a1'"),
    ):
        request(settings_for(mosquitto, unique_topic), "ack", {"id": "a1"}, timeout=30)
    assert time.monotonic() - start < 20  # answered by both, not given up on at 30 s


@pytest.mark.integration
def test_request_without_a_running_pipeline_times_out_with_one_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Nobody answers: RemoteError says so and that the command stays queued."""
    with pytest.raises(RemoteError) as err:
        request(settings_for(mosquitto, unique_topic), "ack", {"id": "a1"}, timeout=1)
    assert str(err.value) == (
        f"no reply from a running pipeline on {unique_topic}/cmd/result within 1 s "
        "(the command stays queued for the pipeline's next connection)"
    )


def test_request_without_a_broker_names_the_broker() -> None:
    """Nothing listens on the port: RemoteError names host and port."""
    port = free_port()
    settings = MqttSettings(host="127.0.0.1", port=port)
    with pytest.raises(RemoteError, match=f"cannot connect to the MQTT broker at 127.0.0.1:{port}"):
        request(settings, "ack", {"id": "a1"}, timeout=2)


@pytest.mark.parametrize(
    "matcher",
    [
        "site=plant-a",
        "asset=~cnc-.*",
        "kind!=press",
        "rule!~dead.*",
        'severity="critical"',
        "site=",
    ],
    ids=["equal", "regex", "not-equal", "not-regex", "quoted", "empty-value"],
)
def test_check_matcher_accepts_alertmanager_syntax(matcher: str) -> None:
    """Every operator of Alertmanager's syntax on a known label is accepted as written."""
    assert check_matcher(matcher) == matcher


@pytest.mark.parametrize(
    ("matcher", "says"),
    [
        ("plant-a", "expected label=value"),
        ("line=3", "unknown label 'line'"),
        ("asset=~cnc-(", "bad regular expression"),
    ],
    ids=["no-operator", "unknown-label", "bad-regex"],
)
def test_check_matcher_rejects_bad_syntax_naming_the_problem(matcher: str, says: str) -> None:
    """A malformed matcher raises MatcherError quoting it and saying what is wrong."""
    with pytest.raises(MatcherError, match=re.escape(repr(matcher))) as err:
        check_matcher(matcher)
    assert says in str(err.value)


@pytest.mark.integration
@pytest.mark.usefixtures("mosquitto")  # skips (or fails in CI) without mosquitto, as conftest says
def test_request_to_a_broker_refusing_the_credentials_says_so(tmp_path: Path) -> None:
    """The broker refuses the connection: RemoteError names it and the settings to check."""
    passwords = make_password_file(tmp_path / "passwd", {"alice": "right"})
    with Mosquitto(tmp_path / "broker", password_file=passwords) as broker:
        settings = MqttSettings(
            host=broker.host, port=broker.port, username="alice", password="wrong"
        )
        with pytest.raises(RemoteError) as err:
            request(settings, "ack", {"id": "a1"}, timeout=5)
    assert str(err.value).startswith(
        f"the MQTT broker at {broker.host}:{broker.port} refused the connection: "
    )
    assert "mqtt.password" in str(err.value)
