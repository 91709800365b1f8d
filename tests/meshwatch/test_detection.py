"""The demo's verdict: which injected faults the alerts caught, how soon, and false alarms."""

from __future__ import annotations

from typing import Any

from ingest.timestamps import format_rfc3339
from meshwatch.detection import GRACE_NS, Fault, score

MIN = 60 * 1_000_000_000
T0 = 1_767_225_600_000_000_000
WEAR = Fault("lyon", "cnc-2", "bearing_wear", start=T0 + 20 * MIN, end=T0 + 60 * MIN)


def _alert(asset: str, at: int, *, rule: str = "anomaly", state: str = "firing", **extra: Any):
    return {
        "id": f"{asset}-{rule}-{at}",
        "site": "lyon",
        "asset": asset,
        "rule": rule,
        "state": state,
        "started_at": format_rfc3339(at),
        **extra,
    }


def test_the_first_alert_after_onset_detects_the_fault_with_its_delay() -> None:
    """Delay is the first firing alert's start minus the fault's start."""
    found = score([WEAR], [_alert("cnc-2", T0 + 27 * MIN), _alert("cnc-2", T0 + 25 * MIN)])
    (finding,) = found.findings
    assert (finding.detected, finding.delay) == (True, 5 * MIN)


def test_an_alert_before_onset_is_a_false_alarm_not_a_detection() -> None:
    """Flagging the asset before its fault began is noise, however close."""
    found = score([WEAR], [_alert("cnc-2", T0 + 19 * MIN)])
    assert found.findings[0].detected is False
    assert len(found.false_alarms) == 1


def test_a_late_alert_within_the_grace_still_counts() -> None:
    """An alert soon after the fault ended (hysteresis, a deadman's wait) is its detection."""
    found = score([WEAR], [_alert("cnc-2", WEAR.end + GRACE_NS)])
    assert found.detected == 1


def test_alerts_on_healthy_assets_are_false_alarms() -> None:
    """Another asset's alert is counted as a false alarm, once per alert id (repeats ignored)."""
    noise = _alert("cnc-1", T0 + 30 * MIN)
    found = score([WEAR], [noise, noise, {**noise, "state": "resolved"}])
    assert len(found.false_alarms) == 1


def test_a_site_wide_alert_names_every_asset_of_its_site() -> None:
    """The site offline alert (asset ``*``) detects a fault of any asset there."""
    found = score([WEAR], [_alert("*", T0 + 25 * MIN, rule="offline")])
    assert found.findings[0].rule == "offline"
