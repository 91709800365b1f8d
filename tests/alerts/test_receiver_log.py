"""The log receiver: one readable line per alert on ``meshwatch.alerts``, asserted as data."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from alerts.base import Notification
from alerts.receivers.log import LogReceiver, LogReceiverSettings, format_line


@pytest.fixture
def records(caplog):
    """The records of ``meshwatch.alerts``, everything from DEBUG up captured."""
    caplog.set_level(logging.DEBUG, logger="meshwatch.alerts")
    return lambda: [r for r in caplog.records if r.name == "meshwatch.alerts"]


def deliver(receiver, alerts, group=None, id="d-1"):
    receiver.notify(Notification(receiver.name, group or {}, alerts, id=id))


def test_one_line_per_alert(records, make_alert):
    """Each alert of a notification is one record."""
    alerts = [make_alert(), make_alert(), make_alert()]
    deliver(LogReceiver("console"), alerts, group={"site": alerts[0]["site"]})
    assert [r.alert_id for r in records()] == [a["id"] for a in alerts]


def test_line_reads_state_severity_asset_kind_rule_and_message(records, make_alert):
    """The line says what fired where, its id and its message."""
    alert = make_alert(value=300.0, message="no data for 5 minutes")
    deliver(LogReceiver("console"), [alert])
    where = f"{alert['site']}/{alert['asset']}"
    assert records()[0].getMessage() == (
        f"FIRING critical {where} (cnc-mill) rule=offline value=300 id={alert['id']}:"
        " no data for 5 minutes"
    )


def test_firing_is_logged_at_the_configured_level(records, make_alert):
    """A firing alert uses the level from the settings."""
    deliver(LogReceiver("console", LogReceiverSettings(level="ERROR")), [make_alert()])
    assert records()[0].levelno == logging.ERROR


def test_firing_defaults_to_warning(records, make_alert):
    """Without settings a firing alert is a WARNING."""
    deliver(LogReceiver("console"), [make_alert()])
    assert records()[0].levelno == logging.WARNING


def test_resolved_is_logged_at_info(records, make_alert):
    """A resolved alert is INFO whatever the configured level."""
    resolved = make_alert(state="resolved", resolved_at=1_767_225_600_000_000_000 + 10**12)
    deliver(LogReceiver("console", LogReceiverSettings(level="ERROR")), [resolved])
    [record] = records()
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("RESOLVED critical ")


def test_record_carries_the_alert_as_data(records, make_alert):
    """Structured handlers get the alert JSON, the receiver and the delivery id."""
    alert = make_alert()
    deliver(LogReceiver("console"), [alert], id="d-9")
    record = records()[0]
    assert (record.alert, record.receiver, record.delivery) == (alert, "console", "d-9")


def test_site_wide_alert_names_the_whole_site(records, make_alert):
    """An alert on the site-wide asset reads "<site> (whole site)"."""
    alert = make_alert(asset="*")
    deliver(LogReceiver("console"), [alert])
    assert f" {alert['site']} (whole site) " in records()[0].getMessage()


def test_malformed_alert_is_still_logged(records):
    """An alert dict missing fields is logged with placeholders, never raising."""
    deliver(LogReceiver("console"), [{"value": "not a number"}])
    assert records()[0].getMessage() == "? ? ?/? rule=? id=?: "


def test_close_is_idempotent_and_logging_goes_on(records, make_alert):
    """close() twice is harmless; the log receiver has nothing to lose."""
    receiver = LogReceiver("console")
    receiver.close()
    receiver.close()
    deliver(receiver, [make_alert()])
    assert len(records()) == 1


def test_format_line_skips_a_missing_kind():
    """Without a kind the parenthesis is left out."""
    line = format_line({"state": "firing", "severity": "warning", "site": "s", "asset": "a"})
    assert line.startswith("FIRING warning s/a rule=?")


def test_settings_refuse_an_unknown_level():
    """Only DEBUG, INFO, WARNING and ERROR are levels."""
    with pytest.raises(ValidationError):
        LogReceiverSettings(level="LOUD")
