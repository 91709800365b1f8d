"""The email receiver: TLS, AUTH, readable messages and outcomes against a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from pydantic import ValidationError

from alerts.base import Notification
from alerts.errors import DeliveryError, RulesError
from alerts.receivers.email import EmailReceiver, EmailSettings

SENDER = "meshwatch@example.com"
ONCALL = "oncall@example.com"


def settings_for(server, ca_file, **overrides) -> EmailSettings:
    values = {
        "host": server.host,
        "port": server.port,
        "sender": SENDER,
        "to": [ONCALL],
        "username": server.username,
        "password": server.password,
        "ca_file": ca_file,
        "timeout": 5.0,
        **overrides,
    }
    return EmailSettings(**values)


@pytest.fixture
def receiver(smtp_server, ca_file):
    """An email receiver for the STARTTLS test server, trusting its CA."""
    made = EmailReceiver("oncall", settings_for(smtp_server, ca_file))
    yield made
    made.close()


def deliver(receiver, alerts, group=None, id="d-1"):
    receiver.notify(Notification(receiver.name, group or {}, alerts, id=id))


def failure(receiver, alerts) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        deliver(receiver, alerts)
    return info.value


def parsed(mail) -> EmailMessage:
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text(mail) -> str:
    return str(parsed(mail).get_content())


# --- delivery -------------------------------------------------------------------------------


@pytest.mark.integration
def test_message_arrives_over_starttls(receiver, smtp_server, make_alert):
    """The message reaches the server inside a TLS session, from the sender to the recipients."""
    deliver(receiver, [make_alert()])
    [mail] = smtp_server.mails
    assert mail.tls
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == [ONCALL]


@pytest.mark.integration
def test_server_saw_the_auth_login(receiver, smtp_server, make_alert):
    """The receiver authenticates as the configured user with LOGIN or PLAIN."""
    deliver(receiver, [make_alert()])
    [mail] = smtp_server.mails
    assert mail.login == smtp_server.username
    assert mail.mechanism in {"LOGIN", "PLAIN"}


@pytest.mark.integration
def test_implicit_tls_delivers(smtps_server, ca_file, make_alert):
    """With ssl: true the receiver speaks TLS from the first byte (SMTPS)."""
    settings = settings_for(smtps_server, ca_file, ssl=True, starttls=False)
    smtps = EmailReceiver("oncall", settings)
    deliver(smtps, [make_alert()])
    smtps.close()
    [mail] = smtps_server.mails
    assert mail.tls
    assert mail.login == smtps_server.username


@pytest.mark.integration
def test_subject_says_state_severity_asset_and_rule(receiver, smtp_server, make_alert):
    """A single alert's subject reads [FIRING] critical: site/asset rule."""
    alert = make_alert(rule="offline", severity="critical")
    deliver(receiver, [alert])
    subject = parsed(smtp_server.mails[0])["Subject"]
    assert subject == f"[FIRING] critical: {alert['site']}/{alert['asset']} offline"


@pytest.mark.integration
def test_body_holds_the_alert_id_and_the_ack_line(receiver, smtp_server, make_alert):
    """A firing alert's body names its id and the command that acknowledges it."""
    alert = make_alert()
    deliver(receiver, [alert])
    body = text(smtp_server.mails[0])
    assert f"Alert id: {alert['id']}" in body
    assert f"Acknowledge: meshwatch ack {alert['id']}" in body


@pytest.mark.integration
def test_body_reads_as_short_lines(receiver, smtp_server, make_alert):
    """The body shows rule, asset with kind, since, value, top metric and the message."""
    alert = make_alert(value=0.93, top_metric="vibration_rms", message="spindle vibrates")
    deliver(receiver, [alert])
    lines = text(smtp_server.mails[0]).splitlines()
    assert lines[0] == "FIRING critical: offline"
    assert f"Asset: {alert['site']}/{alert['asset']} (cnc-mill)" in lines
    assert "Since: 2026-01-01 00:01:00 UTC" in lines
    assert "Value: 0.93" in lines
    assert "Top metric: vibration_rms" in lines
    assert "spindle vibrates" in lines
    assert max(len(line) for line in lines) <= 78  # fits a phone without wrapping much


@pytest.mark.integration
def test_resolved_alert_says_when_and_has_no_ack_line(receiver, smtp_server, make_alert):
    """A resolved alert shows its resolution time; there is nothing to acknowledge."""
    alert = make_alert(state="resolved", resolved_at=1_767_225_600_000_000_000 + 600 * 10**9)
    deliver(receiver, [alert])
    mail = smtp_server.mails[0]
    assert parsed(mail)["Subject"].startswith("[RESOLVED] critical: ")
    assert "Resolved: 2026-01-01 00:10:00 UTC" in text(mail)
    assert "Acknowledge" not in text(mail)


@pytest.mark.integration
def test_group_is_one_message_listing_every_alert(receiver, smtp_server, make_alert):
    """A group of three is one message, [FIRING:3] <group>: 3 alerts, with every id."""
    alerts = [make_alert(), make_alert(), make_alert()]
    site = alerts[0]["site"]
    deliver(receiver, alerts, group={"site": site})
    [mail] = smtp_server.mails
    assert parsed(mail)["Subject"] == f"[FIRING:3] {site}: 3 alerts"
    for alert in alerts:
        assert f"Acknowledge: meshwatch ack {alert['id']}" in text(mail)


@pytest.mark.integration
def test_message_id_follows_the_delivery_id(receiver, smtp_server, make_alert):
    """Message-ID is made from the delivery id, so a retried notification keeps it."""
    deliver(receiver, [make_alert()], id="d-77")
    message = parsed(smtp_server.mails[0])
    assert message["Message-ID"] == "<d-77@example.com>"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None


@pytest.mark.integration
def test_some_refused_recipients_still_deliver_and_warn(smtp_server, ca_file, make_alert, caplog):
    """With one of two recipients refused, the other gets the message and a warning is logged."""
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 no such user"
    settings = settings_for(smtp_server, ca_file, to=[ONCALL, "gone@example.com"])
    partial = EmailReceiver("oncall", settings)
    with caplog.at_level(logging.WARNING, logger="meshwatch.alerts"):
        deliver(partial, [make_alert()])
    partial.close()
    assert smtp_server.mails[0].rcpt_tos == [ONCALL]
    assert "gone@example.com" in caplog.text
    assert "550" in caplog.text


# --- outcomes -------------------------------------------------------------------------------


@pytest.mark.integration
def test_bad_password_is_not_retryable(smtp_server, ca_file, make_alert):
    """A refused login (535) never passes: not retryable, the message quotes the reply."""
    wrong = EmailReceiver("oncall", settings_for(smtp_server, ca_file, password="wrong"))
    error = failure(wrong, [make_alert()])
    wrong.close()
    assert not error.retryable
    assert "535" in str(error)
    assert "AUTH" in str(error)


@pytest.mark.integration
def test_server_down_is_retryable(closed_port, ca_file, make_alert):
    """Nothing listening on the port: retryable."""
    settings = EmailSettings(
        host="127.0.0.1", port=closed_port, sender=SENDER, to=[ONCALL], ca_file=ca_file
    )
    down = EmailReceiver("oncall", settings)
    error = failure(down, [make_alert()])
    down.close()
    assert error.retryable


@pytest.mark.integration
def test_silent_server_times_out_retryably(make_alert):
    """A server that accepts the connection but never greets: retryable after the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the handshake; nobody ever answers
        port = listener.getsockname()[1]
        settings = EmailSettings(
            host="127.0.0.1", port=port, sender=SENDER, to=[ONCALL], timeout=0.2
        )
        error = failure(EmailReceiver("oncall", settings), [make_alert()])
    assert error.retryable


@pytest.mark.integration
def test_untrusted_certificate_is_not_retryable(smtp_server, make_alert):
    """Without the site's CA the certificate does not verify: final, and the fix is named."""
    untrusting = EmailReceiver("oncall", settings_for(smtp_server, None))
    error = failure(untrusting, [make_alert()])
    assert not error.retryable
    assert "email.ca_file" in str(error)
    assert smtp_server.mails == []


@pytest.mark.integration
def test_every_recipient_refused_permanently_is_not_retryable(smtp_server, ca_file, make_alert):
    """All recipients refused with 5xx: not retryable, the reply is quoted."""
    smtp_server.refuse[ONCALL] = "550 5.1.1 no such user"
    error = failure(EmailReceiver("oncall", settings_for(smtp_server, ca_file)), [make_alert()])
    assert not error.retryable
    assert "550 5.1.1 no such user" in str(error)


@pytest.mark.integration
def test_temporary_refusal_is_retryable(receiver, smtp_server, make_alert):
    """A 4xx answer to the message (451, try again later) is retryable."""
    smtp_server.data_reply = "451 4.3.0 try again later"
    error = failure(receiver, [make_alert()])
    assert error.retryable
    assert "451" in str(error)


@pytest.mark.integration
def test_permanent_refusal_of_the_message_is_not_retryable(receiver, smtp_server, make_alert):
    """A 5xx answer to the message (554) is final."""
    smtp_server.data_reply = "554 5.7.1 message rejected"
    error = failure(receiver, [make_alert()])
    assert not error.retryable
    assert "554 5.7.1 message rejected" in str(error)


@pytest.mark.integration
def test_password_appears_in_no_error(smtp_server, ca_file, make_alert):
    """A failed login's error does not show the password."""
    wrong = EmailReceiver("oncall", settings_for(smtp_server, ca_file, password="hunter2-x"))
    error = failure(wrong, [make_alert()])
    assert "hunter2-x" not in str(error)
    assert "hunter2-x" not in repr(wrong.settings)


def test_notify_after_close_is_retryable(make_alert):
    """A closed receiver refuses work in a way that keeps the notification queued."""
    closed = EmailReceiver("oncall", EmailSettings(host="smtp.example", sender=SENDER, to=[ONCALL]))
    closed.close()
    assert failure(closed, [make_alert()]).retryable


# --- settings -------------------------------------------------------------------------------


def test_settings_read_the_yaml_shape():
    """The documented YAML mapping validates with STARTTLS on port 587."""
    settings = EmailSettings.model_validate(
        {
            "host": "smtp.example",
            "sender": "meshwatch@example",
            "to": ["oncall@example"],
            "username": "meshwatch",
            "password": "...",
        }
    )
    assert (settings.port, settings.starttls, settings.ssl) == (587, True, False)


def test_ssl_alone_means_port_465_without_starttls():
    """ssl: true on its own picks the SMTPS port and turns STARTTLS off."""
    settings = EmailSettings(host="smtp.example", sender=SENDER, to=[ONCALL], ssl=True)
    assert (settings.port, settings.starttls) == (465, False)


def test_ssl_and_starttls_together_are_refused_with_the_fix():
    """Asking for both TLS modes is an error that says which key to change."""
    with pytest.raises(ValidationError, match="starttls: false"):
        EmailSettings(host="h", sender=SENDER, to=[ONCALL], ssl=True, starttls=True)


def test_settings_need_a_recipient():
    """An empty recipient list is refused."""
    with pytest.raises(ValidationError):
        EmailSettings(host="h", sender=SENDER, to=[])


@pytest.mark.parametrize("address", ["oncall", "a@b\r\nBcc: x@y", ""])
def test_settings_refuse_what_is_not_an_address(address):
    """A recipient must look like an address and hold no line break."""
    with pytest.raises(ValidationError, match="not a mail address"):
        EmailSettings(host="h", sender=SENDER, to=[address])


def test_username_and_password_go_together():
    """A username without a password is refused, and the message says to set both."""
    with pytest.raises(ValidationError, match="set both or neither"):
        EmailSettings(host="h", sender=SENDER, to=[ONCALL], username="meshwatch")


def test_login_without_tls_is_refused():
    """Credentials over a plain connection are refused."""
    with pytest.raises(ValidationError, match="in clear"):
        EmailSettings(
            host="h", sender=SENDER, to=[ONCALL], starttls=False, username="u", password="p"
        )


def test_missing_ca_file_is_refused(tmp_path):
    """A ca_file that does not exist is refused, naming the path."""
    with pytest.raises(ValidationError, match="does not exist"):
        EmailSettings(host="h", sender=SENDER, to=[ONCALL], ca_file=tmp_path / "nope.pem")


def test_ca_file_that_is_no_certificate_is_a_rules_error(tmp_path):
    """A ca_file that is not PEM fails when the receiver is built, naming the file."""
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    settings = EmailSettings(host="h", sender=SENDER, to=[ONCALL], ca_file=bogus)
    with pytest.raises(RulesError, match=r"ca\.pem"):
        EmailReceiver("oncall", settings)


def test_subject_stays_on_one_line(make_alert):
    """A line break in a label cannot break the Subject header."""
    alert = make_alert(message="x")
    alert["rule"] = "offline\r\nBcc: someone@example.com"
    receiver = EmailReceiver("oncall", EmailSettings(host="h", sender=SENDER, to=[ONCALL]))
    message = receiver.message(Notification("oncall", {}, [alert], id="d-1"))
    assert "\n" not in message["Subject"]
    assert message["Bcc"] is None
