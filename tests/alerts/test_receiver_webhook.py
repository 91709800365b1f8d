"""The webhook receiver: bodies, headers, signatures and outcomes against a real HTTP server."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
import pytest
from pydantic import ValidationError

from alerts.base import Notification
from alerts.errors import DeliveryError
from alerts.receivers.webhook import USER_AGENT, WebhookReceiver, WebhookSettings, sign

SECRET = "s3cret-do-not-log"


@pytest.fixture
def webhook(http_server):
    """A signing webhook receiver posting to the test server."""
    receiver = WebhookReceiver("maintenance", WebhookSettings(url=http_server.url, secret=SECRET))
    yield receiver
    receiver.close()


def deliver(receiver, alerts, group=None, id="d-1"):
    receiver.notify(Notification(receiver.name, group or {}, alerts, id=id))


def failure(receiver, alerts, group=None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        deliver(receiver, alerts, group)
    return info.value


@pytest.mark.integration
def test_single_alert_body_is_exactly_the_alert_json(webhook, http_server, make_alert):
    """An ungrouped alert is POSTed as the alert JSON object itself, nothing around it."""
    alert = make_alert()
    deliver(webhook, [alert])
    [request] = http_server.requests
    assert request.method == "POST"
    assert request.path == "/hooks/meshwatch"
    assert request.json() == alert


@pytest.mark.integration
def test_signature_verifies_with_sign(webhook, http_server, make_alert):
    """The signature header is sign(secret, exact body bytes)."""
    deliver(webhook, [make_alert()])
    [request] = http_server.requests
    expected = sign(SECRET.encode(), request.body)
    assert hmac.compare_digest(request.headers["x-meshwatch-signature"], expected)


def test_sign_is_hex_hmac_sha256_of_the_body():
    """sign() matches a plain hmac computation, so receivers need not install meshwatch."""
    body = b'{"id":"a1"}'
    digest = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(b"k", body) == f"sha256={digest}"


@pytest.mark.integration
def test_no_signature_without_a_secret(http_server, make_alert):
    """Without a secret no signature header is sent."""
    receiver = WebhookReceiver("plain", WebhookSettings(url=http_server.url))
    deliver(receiver, [make_alert()])
    receiver.close()
    assert "x-meshwatch-signature" not in http_server.requests[0].headers


@pytest.mark.integration
def test_headers_carry_type_agent_and_delivery_id(webhook, http_server, make_alert):
    """Content-Type, User-Agent and the delivery id are set on every POST."""
    deliver(webhook, [make_alert()], id="delivery-42")
    headers = http_server.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("meshwatch/")
    assert headers["x-meshwatch-delivery"] == "delivery-42"


@pytest.mark.integration
def test_configured_headers_are_sent(http_server, make_alert):
    """Extra headers from the settings go out with each POST."""
    settings = WebhookSettings(url=http_server.url, headers={"Authorization": "Bearer t0k"})
    receiver = WebhookReceiver("cmms", settings)
    deliver(receiver, [make_alert()])
    receiver.close()
    assert http_server.requests[0].headers["authorization"] == "Bearer t0k"


@pytest.mark.integration
def test_group_is_one_post_of_an_array(webhook, http_server, make_alert):
    """A grouped notification is a single POST whose body is the array of alerts."""
    alerts = [make_alert(), make_alert(), make_alert()]
    deliver(webhook, alerts, group={"site": alerts[0]["site"]})
    [request] = http_server.requests
    assert request.json() == alerts
    assert request.headers["x-meshwatch-delivery"] == "d-1"


@pytest.mark.integration
def test_ungrouped_alerts_are_one_post_each_with_numbered_ids(webhook, http_server, make_alert):
    """Several ungrouped alerts make one POST each, delivery ids suffixed -1, -2, ..."""
    alerts = [make_alert(), make_alert()]
    deliver(webhook, alerts, id="d-7")
    assert [r.json() for r in http_server.requests] == alerts
    ids = [r.headers["x-meshwatch-delivery"] for r in http_server.requests]
    assert ids == ["d-7-1", "d-7-2"]


@pytest.mark.integration
def test_each_post_is_signed_over_its_own_body(webhook, http_server, make_alert):
    """Every POST of a notification carries the signature of its own body."""
    deliver(webhook, [make_alert(), make_alert()])
    assert len(http_server.requests) == 2
    for request in http_server.requests:
        assert request.headers["x-meshwatch-signature"] == sign(SECRET.encode(), request.body)


@pytest.mark.integration
def test_500_is_retryable(webhook, http_server, make_alert):
    """A server error may pass later: retryable."""
    http_server.reply(500, b"database is down")
    error = failure(webhook, [make_alert()])
    assert error.retryable
    assert "500" in str(error)


@pytest.mark.integration
def test_retry_after_seconds_become_retry_after(webhook, http_server, make_alert):
    """429 with Retry-After: 7 is retryable with retry_after 7 seconds."""
    http_server.reply(429, headers={"Retry-After": "7"})
    error = failure(webhook, [make_alert()])
    assert error.retryable
    assert error.retry_after == 7.0


@pytest.mark.integration
def test_400_is_not_retryable_and_quotes_the_answer(webhook, http_server, make_alert):
    """A 400 never passes: not retryable, the message quotes status and 200 chars of body."""
    http_server.reply(400, b"unknown asset " + b"x" * 500)
    error = failure(webhook, [make_alert()])
    assert not error.retryable
    assert "400" in str(error)
    assert "unknown asset " + "x" * 186 in str(error)
    assert "x" * 187 not in str(error)


@pytest.mark.integration
def test_redirect_is_not_retryable(webhook, http_server, make_alert):
    """A redirect is not followed: not retryable, the message names where it points."""
    http_server.reply(301, headers={"Location": "https://elsewhere.example/hook"})
    error = failure(webhook, [make_alert()])
    assert not error.retryable
    assert "https://elsewhere.example/hook" in str(error)


@pytest.mark.integration
def test_endpoint_down_is_retryable(closed_port, make_alert):
    """Nothing listening on the port: retryable."""
    receiver = WebhookReceiver("down", WebhookSettings(url=f"http://127.0.0.1:{closed_port}/h"))
    error = failure(receiver, [make_alert()])
    receiver.close()
    assert error.retryable


@pytest.mark.integration
def test_timeout_is_retryable(http_server, make_alert):
    """A server that does not answer within the timeout: retryable."""
    http_server.hang()
    receiver = WebhookReceiver("slow", WebhookSettings(url=http_server.url, timeout=0.2))
    error = failure(receiver, [make_alert()])
    receiver.close()
    assert error.retryable
    assert "0.2 s" in str(error)


@pytest.mark.integration
def test_secret_appears_in_no_error_or_repr(webhook, http_server, make_alert):
    """Neither errors nor the receiver's or settings' repr show the secret."""
    http_server.reply(400, b"bad")
    error = failure(webhook, [make_alert()])
    assert SECRET not in str(error)
    assert SECRET not in repr(webhook)
    assert SECRET not in repr(webhook.settings)


@pytest.mark.integration
def test_url_credentials_appear_in_no_error(closed_port, make_alert):
    """A password in the URL, or a secret in its path, stays out of error messages."""
    url = f"http://user:pw123@127.0.0.1:{closed_port}/hooks/T0KEN"
    receiver = WebhookReceiver("down", WebhookSettings(url=url))
    error = failure(receiver, [make_alert()])
    receiver.close()
    assert "pw123" not in str(error)
    assert "T0KEN" not in str(error)


@pytest.mark.integration
def test_notify_after_close_is_retryable(webhook, make_alert):
    """A closed receiver refuses work in a way that keeps the notification queued."""
    webhook.close()
    assert failure(webhook, [make_alert()]).retryable


@pytest.mark.integration
def test_empty_notification_posts_nothing(webhook, http_server):
    """A notification without alerts makes no request."""
    deliver(webhook, [])
    assert http_server.requests == []


# --- unit tests of the status table, with a fake transport -------------------------------


@pytest.fixture
def answering():
    """A factory of receivers whose fake transport answers every POST with one status."""
    made: list[WebhookReceiver] = []

    def make(status: int, headers: dict[str, str] | None = None) -> WebhookReceiver:
        transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=headers))
        settings = WebhookSettings(url="https://hook.example/")
        made.append(WebhookReceiver("t", settings, transport=transport))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_statuses_a_retry_may_fix_are_retryable(status, answering, make_alert):
    """408, 425, 429 and every 5xx are retryable."""
    assert failure(answering(status), [make_alert()]).retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_client_errors_are_not_retryable(status, answering, make_alert):
    """The remaining 4xx are final."""
    assert not failure(answering(status), [make_alert()]).retryable


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(status, answering, make_alert):
    """Every 2xx counts as delivered."""
    deliver(answering(status), [make_alert()])


def test_retry_after_as_http_date_is_converted_to_seconds(answering, make_alert):
    """A Retry-After date in the future gives a positive retry_after."""
    receiver = answering(503, {"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    error = failure(receiver, [make_alert()])
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_bodies_are_orjson_bytes_of_the_alerts(make_alert):
    """The body bytes are orjson's serialization of the alert, as signed."""
    alert = make_alert()
    assert WebhookReceiver.bodies(Notification("t", {}, [alert])) == [orjson.dumps(alert)]


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://host/x", "not a url", "mqtt://broker/x"])
def test_settings_reject_non_http_urls(url):
    """Only http and https URLs are accepted."""
    with pytest.raises(ValidationError):
        WebhookSettings(url=url)


def test_settings_reject_a_non_positive_timeout():
    """A timeout must be above 0 s."""
    with pytest.raises(ValidationError):
        WebhookSettings(url="https://hook.example/", timeout=0)


@pytest.mark.parametrize("name", ["Content-Type", "x-meshwatch-signature", "User-Agent"])
def test_settings_reject_headers_meshwatch_sets(name):
    """Extra headers cannot replace the ones meshwatch sets itself; the message says so."""
    with pytest.raises(ValidationError, match="set by meshwatch itself"):
        WebhookSettings(url="https://hook.example/", headers={name: "x"})


def test_settings_read_the_yaml_shape():
    """The documented YAML mapping validates."""
    settings = WebhookSettings.model_validate(
        {"url": "https://cmms.example/hooks/meshwatch", "secret": "..."}
    )
    assert str(settings.url) == "https://cmms.example/hooks/meshwatch"
    assert settings.timeout == 5.0
