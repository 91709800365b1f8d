"""`meshwatch evaluate`: the numbers it prints are the protocol's, computed by hand here."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from models.asset import AssetModel
from models.settings import ProfileSettings

CONFIG = """
models:
  profiles:
    - name: default
    - name: quick
      warmup: 120
"""


# The generic CSV format of the files these tests write.
CSV_FLAGS = (
    "--format",
    "csv",
    "--timestamp-column",
    "time",
    "--label-column",
    "label",
    "--delimiter",
    ";",
)


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the meshwatch command line with `args`, capturing its text output."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args], capture_output=True, text=True, timeout=60
    )


def _write_file(path: Path, seed: int, fault: range) -> list[tuple[int, dict[str, float], int]]:
    rng = random.Random(seed)
    rows = []
    lines = ["time;flow rate;pressure;label"]
    for n in range(300):
        shift = 4.0 if n in fault else 0.0
        metrics = {"flow_rate": 30 + rng.gauss(0, 0.5) - shift, "pressure": 2 + rng.gauss(0, 0.05)}
        label = int(n in fault)
        rows.append((1_600_000_000 + n, metrics, label))
        lines.append(
            f"{1_600_000_000 + n};{metrics['flow_rate']!r};{metrics['pressure']!r};{label}"
        )
    path.write_text("\n".join(lines) + "\n")
    return rows


def _by_hand(rows, train: int) -> dict[str, float]:
    model = AssetModel(ProfileSettings(name="quick", warmup=120))
    tp = fp = fn = tn = 0
    for n, (ts, metrics, label) in enumerate(rows):
        flagged = model.process(ts * 10**9, metrics).anomalous
        if n < train:
            continue
        tp += label and flagged
        fp += (not label) and flagged
        fn += label and not flagged
        tn += not label and not flagged
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


@pytest.fixture
def files(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    return {
        "a.csv": _write_file(data / "a.csv", 1, range(200, 260)),
        "b.csv": _write_file(data / "b.csv", 2, range(150, 290)),
    }


def test_printed_counts_and_rates_equal_hand_computed_ones(tmp_path: Path, files) -> None:
    """Per-file and overall TP/FP/FN/TN, F1, FAR and MAR match a hand count of the verdicts."""
    config = tmp_path / "meshwatch.yaml"
    config.write_text(CONFIG)
    result = _evaluate(
        "--config",
        str(config),
        "evaluate",
        str(tmp_path / "data"),
        "--profile",
        "quick",
        *CSV_FLAGS,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    by_file = {Path(r["file"]).name: r for r in records}
    total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for name, rows in files.items():
        counts = _by_hand(rows, train=120)
        assert {k: by_file[name][k] for k in counts} == counts
        for k in total:
            total[k] += counts[k]
    overall = by_file["overall"]
    f1 = total["tp"] / (total["tp"] + (total["fp"] + total["fn"]) / 2)
    assert {k: overall[k] for k in total} == total
    assert overall["f1"] == round(f1, 4)
    assert overall["precision"] == round(total["tp"] / (total["tp"] + total["fp"]), 4)
    assert overall["recall"] == round(total["tp"] / (total["tp"] + total["fn"]), 4)
    assert overall["far"] == round(100 * total["fp"] / (total["fp"] + total["tn"]), 2)
    assert overall["mar"] == round(100 * total["fn"] / (total["fn"] + total["tp"]), 2)
    assert total["tp"] > 100  # the shifted flow is found: the check is not vacuous


def test_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A path that does not exist: one line naming it, exit status 2."""
    result = _evaluate("evaluate", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope" in result.stderr


def test_a_bad_row_names_file_and_line(tmp_path: Path) -> None:
    """A row with a non-number: one line with the file and line number."""
    bad = tmp_path / "bad.csv"
    bad.write_text("time;x;label\n1;1.0;0\n2;oops;0\n")
    result = _evaluate("evaluate", str(bad), *CSV_FLAGS)
    assert result.returncode == 2
    assert f"{bad}:3" in result.stderr
