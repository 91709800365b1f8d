"""`meshwatch demo`: a broker, the pipeline and the small simulated fleet with faults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_ends_by_itself_with_its_summary_line_and_alarm_report(data_dir: Path) -> None:
    """A short run as fast as possible, default settings: the console, the summary, the report.

    How many faults the models catch is the benchmarks' and ``evaluate``'s to measure (issue
    11's goals); the silent conveyor is caught by the deadman rule whatever the models do.
    """
    env = {
        **os.environ,
        "MESHWATCH_DATA_DIR": str(data_dir),
        "MESHWATCH_WEB__PORT": "0",
        "COLUMNS": "160",
    }
    command = [sys.executable, "-m", "meshwatch", "demo", "--no-live", "--speed", "0"]
    with subprocess.Popen(
        [*command, "--duration", DURATION],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as demo:
        assert demo.stdout is not None
        first = ""
        for line in demo.stdout:
            first += line
            if line.startswith("console: "):
                break
        # The console answers on the address it printed, while the demo runs.
        address = re.search(r"^console: (http://\S+) \(read-only\)$", first, re.MULTILINE)
        assert address is not None, first
        page = httpx.get(address.group(1) + "/", timeout=10)
        assert page.status_code == 200 and 'id="filters"' in page.text, page.text[:500]
        try:
            stdout, stderr = demo.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    result = subprocess.CompletedProcess(demo.args, demo.returncode, first + stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith("faults detected")]
    assert len(summary) == 1, result.stdout
    form = re.fullmatch(r"faults detected: (\d+) of (\d+); false alarms: (\d+)", summary[0])
    assert form is not None, summary[0]
    detected, of, _false_alarms = map(int, form.groups())
    assert of == 4 and detected >= 1, result.stdout
    for measure in ("false alarms per 10 min", "alarms per day", "chattering", "stale"):
        assert measure in result.stdout, measure
    assert (data_dir / "meshwatch.db").exists()
    assert (data_dir / "demo-labels.jsonl").exists()


#: Long enough for the small fleet's faults to start and show (set by its schedule).
DURATION = "100m"
