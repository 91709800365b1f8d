"""The demo's verdict: which injected faults the alerts caught, how soon, and false alarms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alerts.detection import GRACE_NS, Episode, Fault, episodes, score
from common.timestamps import format_rfc3339
from meshwatch.runevaluation import read_faults
from simulators.groundtruth import GroundTruth, write_labels

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


def test_messages_of_one_alert_fold_into_one_episode_with_its_clearing() -> None:
    """Firing, a repeat and the resolution: one episode, fired and cleared at their times."""
    firing = _alert("cnc-1", T0 + MIN, resolved_at=None)
    resolved = {**firing, "state": "resolved", "resolved_at": format_rfc3339(T0 + 3 * MIN)}
    still = _alert("cnc-2", T0 + 2 * MIN)
    assert episodes([firing, still, firing, resolved]) == [
        Episode(firing["id"], "lyon", "cnc-1", "anomaly", T0 + MIN, T0 + 3 * MIN),
        Episode(still["id"], "lyon", "cnc-2", "anomaly", T0 + 2 * MIN, None),
    ]


def test_an_alert_seen_only_resolved_is_still_an_episode() -> None:
    """A resolution whose firing message was missed still counts the alarm once."""
    only = {**_alert("cnc-1", T0 + 5 * MIN), "state": "resolved",
            "resolved_at": format_rfc3339(T0 + 6 * MIN)}  # fmt: skip
    assert len(score([WEAR], [only]).false_alarms) == 1


def test_the_summary_line_has_the_form_scripts_read() -> None:
    """Exactly ``faults detected: X of Y; false alarms: N``."""
    found = score([WEAR], [_alert("cnc-2", T0 + 25 * MIN), _alert("cnc-1", T0 + 5 * MIN)])
    assert found.line() == "faults detected: 1 of 1; false alarms: 1"
    assert re.fullmatch(r"faults detected: \d+ of \d+; false alarms: \d+", found.line())


def test_faults_are_read_from_the_simulator_labels_file(tmp_path: Path) -> None:
    """A labels file gives the faults with their windows (an open end at the run's end)."""
    path = tmp_path / "labels.jsonl"
    write_labels(path, [GroundTruth("lyon", "cnc-2", "bearing_wear", WEAR.start, None)], WEAR.end)
    assert read_faults(path) == [WEAR]
