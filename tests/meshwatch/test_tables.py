"""What ``meshwatch status`` prints (`meshwatch.tables`): the fleet table's cells, unit-tested."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from meshwatch.tables import alerts_cell, health_table

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()


def _health(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A health message of cnc-1 at plant-a with these ``alerts`` entries."""
    return {
        "site": "plant-a",
        "asset": "cnc-1",
        "kind": "cnc-mill",
        "status": "warning",
        "score": 0.61,
        "since": "2026-11-25T11:00:00.000Z",
        "reason": "",
        "alerts": list(alerts),
    }


def _alerts_column(*alerts: dict[str, Any]) -> str:
    """The ALERTS cell of the one row ``meshwatch status`` prints for this health message."""
    table = health_table([_health(*alerts)], NOW)
    (column,) = [c for c in table.columns if c.header == "alerts"]
    (cell,) = list(column.cells)
    return str(cell)


def test_the_alerts_column_shows_a_shelved_alert_with_who_and_when_it_ends() -> None:
    """A shelved alert is not shown as a plain firing one: who shelved it and its end."""
    shelved = {
        "id": "a1",
        "rule": "anomaly",
        "state": "firing",
        "shelved_until": "2026-11-25T14:00:00.000Z",
        "shelved_by": "ana",
    }
    assert _alerts_column(shelved) == "anomaly (shelved by ana, ends in 2h)"


def test_the_alerts_column_marks_a_flapping_alert() -> None:
    """An alert held as one by flap damping is marked flapping; the others stay plain."""
    flapping = {"id": "a1", "rule": "spindle_hot", "state": "firing", "flapping": True}
    plain = {"id": "a2", "rule": "anomaly", "state": "firing"}
    assert _alerts_column(flapping, plain) == "anomaly, spindle_hot (flapping)"


def test_an_alert_both_flapping_and_shelved_carries_both_marks() -> None:
    """The two marks are independent."""
    both = {
        "rule": "anomaly",
        "flapping": True,
        "shelved_until": "2026-11-25T12:30:00.000Z",
        "shelved_by": "ben",
    }
    assert _alerts_column(both) == "anomaly (flapping, shelved by ben, ends in 30m)"


@pytest.mark.parametrize(
    ("until", "shown"),
    [
        ("2026-11-25T11:55:00.000Z", "anomaly (shelved, ended 5m ago)"),
        ("soon", "anomaly (shelved until soon)"),
    ],
    ids=["end-passed", "unreadable-end"],
)
def test_a_shelf_end_in_the_past_or_unreadable_is_shown_as_it_is(until: str, shown: str) -> None:
    """A retained message older than its shelf's end, or from a newer pipeline, still shows."""
    assert _alerts_column({"rule": "anomaly", "shelved_until": until}) == shown


def test_the_alerts_column_lists_each_rule_once_sorted_and_dash_without_alerts() -> None:
    """Plain alerts: sorted rule names, each once; no alerts (or no list) is a dash."""
    assert _alerts_column({"rule": "offline"}, {"rule": "anomaly"}, {"rule": "anomaly"}) == (
        "anomaly, offline"
    )
    assert str(alerts_cell([], NOW)) == str(alerts_cell(None, NOW)) == "-"
