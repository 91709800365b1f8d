"""`meshwatch demo`: a broker, the pipeline and the small simulated fleet with faults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_ends_by_itself_and_detects_every_injected_fault(data_dir: Path) -> None:
    """A short run as fast as possible: its summary shows each fault of the fleet detected."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshwatch",
            "demo",
            "--no-live",
            "--speed",
            "0",
            "--duration",
            DURATION,
        ],
        env={**os.environ, "MESHWATCH_DATA_DIR": str(data_dir), "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith("faults detected")]
    assert len(summary) == 1, result.stdout
    detected, of = summary[0].split(":")[1].split(";")[0].split(" of ")
    assert int(detected) == int(of) > 0, result.stdout
    assert (data_dir / "meshwatch.db").exists()
    assert (data_dir / "demo-labels.jsonl").exists()


#: Long enough for the small fleet's faults to start and show (set by its schedule).
DURATION = "100m"
