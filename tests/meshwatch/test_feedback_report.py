"""``meshwatch evaluate --feedback``: the alerts scored against maintenance staff's verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from alerts.labels import Label, Verdict
from alerts.state import AlertState, Changes
from simulators.groundtruth import read_labels

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60 * 1_000_000_000


def _label(n: int, verdict: Verdict, rule: str, asset: str, *, end: int | None = 1) -> Label:
    return Label(
        f"a{n}",
        verdict,
        "ana",
        "",
        1_767_225_600.0 + n,
        rule,
        "warning",
        "lyon",
        asset,
        "cnc-mill",
        T0 + n * MINUTE,
        None if end is None else T0 + (n + end) * MINUTE,
    )


LABELS = [
    _label(1, Verdict.FAULT, "anomaly", "cnc-1"),
    _label(2, Verdict.NORMAL, "anomaly", "cnc-1"),
    _label(3, Verdict.NORMAL, "anomaly", "cnc-2"),
    _label(4, Verdict.FAULT, "spindle_hot", "cnc-2", end=None),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose alerts.db holds the four labels of `LABELS`."""
    path = tmp_path / "data"
    state = AlertState(path / "alerts.db")
    state.save(Changes(labels=LABELS), 1_767_225_700.0)
    state.close()
    return path


def _evaluate(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", "evaluate", "--feedback", *args],
        env={**env, "MESHWATCH_DATA_DIR": str(data_dir), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_feedback_report_counts_verdicts_per_rule_and_asset(data_dir: Path) -> None:
    """Per rule and per asset: confirmed faults, alerts marked normal and the precision."""
    result = _evaluate(data_dir, "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["total"] == {"labelled": 4, "fault": 2, "normal": 2, "precision": 0.5}
    assert report["by_rule"]["anomaly"] == {
        "labelled": 3,
        "fault": 1,
        "normal": 2,
        "precision": pytest.approx(1 / 3),
    }
    assert report["by_asset"]["lyon/cnc-2"]["normal"] == 1


def test_feedback_report_prints_a_table_per_rule_and_per_asset(data_dir: Path) -> None:
    """The tables name each rule and asset, with a total row."""
    result = _evaluate(data_dir)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "spindle_hot" in line]
    assert [cell.strip() for cell in rows[0].strip("│ ").split("│")] == [
        "spindle_hot",
        "1",
        "1",
        "0",
        "100%",
    ]
    assert "lyon/cnc-1" in result.stdout


def test_confirmed_faults_export_as_ground_truth(data_dir: Path, tmp_path: Path) -> None:
    """``--export-labels`` writes the confirmed faults as a simulator labels file."""
    out = tmp_path / "confirmed.jsonl"
    result = _evaluate(data_dir, "--export-labels", str(out))
    assert result.returncode == 0, result.stderr
    faults = read_labels(out)
    assert [(f.asset, f.fault, f.start) for f in faults] == [
        ("cnc-1", "confirmed:anomaly", T0 + MINUTE),
        ("cnc-2", "confirmed:spindle_hot", T0 + 4 * MINUTE),
    ]
    assert faults[0].end == T0 + 2 * MINUTE  # its episode's end
    assert faults[1].end is not None and faults[1].end > T0 + 4 * MINUTE  # firing: ends now
    assert "2 confirmed faults written to" in result.stdout


def test_feedback_report_without_verdicts_fails_in_one_line(tmp_path: Path) -> None:
    """No labels yet: exit 1 and one line saying how to give them."""
    result = _evaluate(tmp_path / "empty")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "no verdicts in" in result.stderr and "meshwatch feedback" in result.stderr


def test_feedback_report_takes_no_path(data_dir: Path, tmp_path: Path) -> None:
    """The labels come from the data dir: a PATH with --feedback is a usage error."""
    result = _evaluate(data_dir, str(tmp_path))
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
