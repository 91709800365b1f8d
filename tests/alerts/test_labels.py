"""The label store (`alerts.labels`): verdicts of maintenance staff kept in alerts.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.labels import Label, Verdict, read_labels
from alerts.state import AlertState, Changes

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
WALL0 = 1_767_225_600.0
SECOND = 1_000_000_000


def _label(alert_id: str = "a1", verdict: Verdict = Verdict.FAULT, **fields: object) -> Label:
    values: dict[str, object] = {
        "alert_id": alert_id,
        "verdict": verdict,
        "by": "ana",
        "comment": "bearing worn",
        "at": WALL0,
        "rule": "anomaly",
        "severity": "warning",
        "site": "plant-a",
        "asset": "cnc-1",
        "kind": "cnc-mill",
        "start": T0,
        "end": T0 + 60 * SECOND,
        **fields,
    }
    return Label(**values)  # type: ignore[arg-type]


def test_a_label_is_saved_and_read_back_exactly(tmp_path: Path) -> None:
    """Saved with the alert state, a label reads back field for field, history included."""
    label = _label().replaced_by(Verdict.NORMAL, "ben", "runs warm", WALL0 + 60, end=T0)
    state = AlertState(tmp_path / "alerts.db")
    state.save(Changes(labels=[label]), WALL0 + 60)
    state.close()
    assert read_labels(tmp_path / "alerts.db") == [label]


def test_one_label_per_alert_the_latest_verdict_wins(tmp_path: Path) -> None:
    """Saving another label of the same alert replaces the first."""
    state = AlertState(tmp_path / "alerts.db")
    state.save(Changes(labels=[_label()]), WALL0)
    state.save(Changes(labels=[_label(verdict=Verdict.NORMAL)]), WALL0 + 1)
    assert [(x.alert_id, x.verdict) for x in read_labels(tmp_path / "alerts.db")] == [
        ("a1", Verdict.NORMAL)
    ]
    assert state.label("a1") == _label(verdict=Verdict.NORMAL)
    state.close()


def test_a_replaced_verdict_joins_the_history() -> None:
    """`replaced_by` keeps who said what before, and when."""
    again = _label().replaced_by(Verdict.NORMAL, "ben", "", WALL0 + 5, end=T0 + SECOND)
    assert (again.verdict, again.by, again.at, again.end) == (
        Verdict.NORMAL,
        "ben",
        WALL0 + 5,
        T0 + SECOND,
    )
    assert again.history == (
        {"verdict": "fault", "by": "ana", "comment": "bearing worn", "at": WALL0},
    )


def test_a_label_in_json_has_rfc3339_times() -> None:
    """Replies carry the label with readable times; a firing alert's end is null."""
    doc = _label(end=None).to_json()
    assert (doc["at"], doc["start"], doc["end"], doc["verdict"]) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00.000Z",
        None,
        "fault",
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"by": "  "}, "a verdict needs by"),
        ({"end": T0 - 1}, "the episode ends before it starts"),
        ({"verdict": "maybe"}, "'maybe' is not a valid Verdict"),
    ],
    ids=["nobody", "ends-before-start", "unknown-verdict"],
)
def test_a_label_that_cannot_be_is_refused(fields: dict[str, object], error: str) -> None:
    """A verdict needs someone, a known verdict, and an episode in order."""
    with pytest.raises(ValueError, match=error):
        _label(**fields)


def test_no_labels_without_a_state_file(tmp_path: Path) -> None:
    """A data dir without alerts.db has no labels (and none is created)."""
    assert read_labels(tmp_path / "alerts.db") == []
    assert not (tmp_path / "alerts.db").exists()


def test_the_same_verdict_again_is_no_new_verdict() -> None:
    """A command delivered twice leaves one verdict, its first time, no history."""
    label = _label(end=None)
    again = label.replaced_by(Verdict.FAULT, "ana", "bearing worn", WALL0 + 9, end=T0 + SECOND)
    assert (again.at, again.history, again.end) == (WALL0, (), T0 + SECOND)
