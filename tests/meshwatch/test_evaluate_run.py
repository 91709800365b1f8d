"""`meshwatch evaluate RUN --labels LABELS`: a recorded simulator run against its ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from simulators.fleet import load_fleet, shipped
from simulators.groundtruth import write_labels
from simulators.recording import Recorded, RecordingWriter
from simulators.simulation import Simulation

pytestmark = pytest.mark.slow

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MINUTE = 60 * 1_000_000_000


def _record_run(tmp_path: Path, minutes: int) -> tuple[Path, Path]:
    """The small fleet's readings as a recording (as `meshwatch record` writes one)."""
    sim = Simulation(load_fleet(shipped("small")), START)
    end = START + minutes * MINUTE
    run = tmp_path / "run.jsonl.gz"
    writer = RecordingWriter(run)
    try:
        for r in sim.until(end):
            topic = f"plant/{r.site}/{r.asset}/telemetry"
            writer.write(Recorded(r.ts / 1e9, topic, 1, False, orjson.dumps(r.payload())))
    finally:
        writer.close()
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, sim.labels, end)
    return run, labels


def _evaluate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "meshwatch.yaml"
    # The demo's warm-up: the simulated machines' duty states show within half an hour.
    config.write_text("models:\n  profiles:\n    - {name: default, warmup: 1800}\n")
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", "--config", str(config), "evaluate", *args],
        env={**os.environ, "MESHWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_recorded_run_is_judged_against_its_ground_truth(tmp_path: Path) -> None:
    """Every fault of the small fleet is found, with its delay, and false alarms are counted."""
    run, labels = _record_run(tmp_path, 100)
    result = _evaluate(tmp_path, str(run), "--labels", str(labels), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [f["fault"] for f in report["faults"]] == [
        "bearing_wear",
        "overheating",
        "pressure_leak",
        "sudden_failure",
    ]
    assert report["detected"] == 4, report
    assert all(0 <= f["delay_s"] < 600 for f in report["faults"])
    assert report["readings"] > 70_000
    assert report["false_alarms_per_asset_day"] >= 0


def test_a_bad_recording_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """A file that is not a recording: one line, exit 2."""
    bad = tmp_path / "run.jsonl.gz"
    bad.write_text("not gzip")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("")
    result = _evaluate(tmp_path, str(bad), "--labels", str(labels))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(bad) in result.stderr
