"""The alarm report: exact figures on hand-made alert episodes."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.detection import Episode, Fault
from common.timestamps import format_rfc3339
from meshwatch.alarmreport import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    alarm_report,
    chattering,
    per_machine_hour,
    report_json,
    report_table,
    stale,
    ten_minute_rate,
)

S = 1_000_000_000
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
M = MINUTE_NS


def _episode(asset: str, fired: int, cleared: int | None = None, *, rule: str = "anomaly"):
    return Episode(f"{asset}-{rule}-{fired}", "lyon", asset, rule, fired, cleared)


def _message(e: Episode, state: str) -> dict[str, Any]:
    """The alert message of an episode, as the MQTT receiver sends it."""
    return {
        "id": e.id,
        "site": e.site,
        "asset": e.asset,
        "rule": e.rule,
        "state": state,
        "started_at": format_rfc3339(e.fired),
        "resolved_at": None if state == "firing" else format_rfc3339(e.cleared or 0),
    }


def test_false_alarms_per_machine_hour_divide_by_machines_times_hours() -> None:
    """40 false alarms on 12 machines in 2 hours are 40/24 per machine-hour."""
    assert per_machine_hour(40, 12, 2 * HOUR_NS) == pytest.approx(40 / 24)
    assert per_machine_hour(3, 0, HOUR_NS) == 0.0


def test_alarms_are_counted_in_fixed_ten_minute_windows_from_the_start() -> None:
    """Mean over the run's length, the worst window and where it starts, floods."""
    times = [T0 + t * M for t in (1, 2, 3, 25, 26, 27, 28, 29)] + [T0 + 21 * M] * 10
    rate = ten_minute_rate(times, T0, T0 + 60 * M)
    assert (rate.count, rate.worst, rate.worst_at) == (18, 15, T0 + 20 * M)
    assert rate.mean == pytest.approx(3.0)  # 18 alarms in six 10-minute windows
    assert rate.per_day == pytest.approx(432.0)
    assert rate.flooded == pytest.approx(1 / 6)  # one window over 10 alarms


def test_a_partial_last_window_and_an_alarm_at_the_end_count() -> None:
    """A 15-minute run has two windows; an alarm at its very end is in the second."""
    rate = ten_minute_rate([T0, T0 + 15 * M], T0, T0 + 15 * M)
    assert (rate.count, rate.worst, rate.worst_at) == (2, 1, T0)
    assert rate.mean == pytest.approx(2 / 1.5)


def test_three_firings_within_a_minute_of_one_rule_on_one_asset_chatter() -> None:
    """Fires and clears 3 times inside a minute: chattering; 3 across 61 s is not."""
    flapping = [_episode("cnc-1", T0 + t * S, T0 + t * S + 5 * S) for t in (0, 20, 40, 50, 300)]
    slower = [_episode("cnc-2", T0 + t * S, T0 + t * S + S) for t in (0, 30, 60)]
    other_rules = [_episode("cnc-3", T0 + t * S, rule=r) for t, r in ((0, "a"), (1, "b"), (2, "c"))]
    (chatter,) = chattering(flapping + slower + other_rules)
    assert (chatter.asset, chatter.rule, chatter.firings, chatter.most_in_a_minute) == (
        "cnc-1",
        "anomaly",
        5,
        4,
    )
    assert chatter.at == T0


def test_an_alarm_firing_for_more_than_24_hours_is_stale() -> None:
    """Until it cleared or until the run ended; exactly 24 hours is not more."""
    end = T0 + 30 * HOUR_NS
    found = [
        _episode("old", T0),  # still firing after 30 h
        _episode("cleared-late", T0, T0 + DAY_NS + S),
        _episode("exactly-a-day", T0, T0 + DAY_NS),
        _episode("recent", T0 + 10 * HOUR_NS),  # 20 h at the end
    ]
    assert [e.asset for e in stale(found, end)] == ["old", "cleared-late"]


def test_the_report_counts_false_alarms_rates_chattering_and_stale_ones() -> None:
    """Hand-made run: one fault caught, a chattering false alarm, a stale false alarm."""
    end = T0 + 25 * HOUR_NS
    fault = Fault("lyon", "cnc-1", "bearing_wear", T0 + 10 * M, end)
    caught = _episode("cnc-1", T0 + 15 * M)
    flaps = [
        _episode("cnc-2", T0 + 3 * HOUR_NS + t * S, T0 + 3 * HOUR_NS + t * S + S)
        for t in (0, 10, 20)
    ]
    forgotten = _episode("cnc-3", T0 + 30 * M)
    messages = [_message(caught, "firing"), _message(forgotten, "firing")]
    for e in flaps:
        messages += [_message(e, "firing"), _message(e, "resolved")]
    report = alarm_report([fault], messages, machines=4, start=T0, end=end)
    assert report.score.line() == "faults detected: 1 of 1; false alarms: 4"
    assert report.delays == [5 * M]
    assert report.machine_hours == 100.0
    assert report.false_alarms_per_machine_hour == pytest.approx(0.04)
    assert (report.alarms.count, report.false_alarms.count) == (5, 4)
    assert report.false_alarms.worst == 3
    assert [(c.asset, c.most_in_a_minute) for c in report.chattering] == [("cnc-2", 3)]
    assert [e.asset for e in report.stale] == ["cnc-1", "cnc-3"]  # the fault's alert too
    assert [e.asset for e in report.stale_false] == ["cnc-3"]
    assert [e.asset for e in report.open_false] == ["cnc-3"]


def test_the_report_renders_as_a_table_and_as_json() -> None:
    """Both forms carry the figures: EEMUA and ISA-18.2 references, chattering, stale."""
    flaps = [_episode("cnc-2", T0 + t * S, T0 + t * S + S) for t in (0, 10, 20)]
    messages = [_message(e, "resolved") for e in flaps]
    report = alarm_report([], messages, machines=12, start=T0, end=T0 + 2 * HOUR_NS)
    data = report_json(report)
    assert data["false_alarms"] == 3
    assert data["false_alarms_per_machine_hour"] == pytest.approx(0.125)
    assert data["alarms"]["worst_per_10_min"] == 3
    assert data["alarms"]["mean_per_10_min"] == pytest.approx(0.25)
    assert data["chattering"][0]["asset"] == "cnc-2"
    assert (data["stale"], data["stale_false_alarms"]) == (0, 0)
    table = report_table(report)
    measures = list(table.columns[0].cells)
    assert "alarms per 10 min" in measures
    assert "chattering (3+ in a minute)" in measures
    assert any("EEMUA 191" in cell for cell in table.columns[2].cells)
