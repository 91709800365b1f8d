"""`meshwatch demo`: a local broker, the pipeline and a small fleet, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_stores_the_fleet_and_keeps_the_malformed_as_dead_letters(data_dir: Path) -> None:
    """The demo ends by itself, having stored every reading and kept 6 dead letters."""
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "demo", "--assets", "4", "--readings", "30"],
        env={**os.environ, "MESHWATCH_DATA_DIR": str(data_dir), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "published 120 readings from 4 assets" in result.stdout
    assert result.stdout.count("│ 30 ") == 4
    assert "dead letters: 6 kept of 6 malformed sent" in result.stdout
    assert "anomaly records: 120 (0 past" in result.stdout  # 30 readings: all in warm-up
    assert (data_dir / "meshwatch.db").exists()
