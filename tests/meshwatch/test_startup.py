"""The commands that never score start without importing the detectors (issue 12).

Guarded by what they import, not by timing: river and numpy (with scipy and pandas behind
them) and the InfluxDB client cost every command seconds of start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshwatch.localservers import free_port

# The heavy modules that only scoring and storing need.
_HEAVY = ("river", "numpy", "scipy", "pandas", "influxdb_client")

# Runs the console script's entry point with the arguments after the output file, then
# writes every module it imported to that file.
_SCRIPT = """
import sys
from meshwatch.cli import main
out = sys.argv.pop(1)
try:
    main()
finally:
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
"""

# (arguments, exit status): --help where the command needs a broker; a broker that is not
# there for ack, which fails after importing the broker client.
_LIGHT_COMMANDS = [
    (("--help",), 0),
    (("status", "--help"), 0),
    (("status", "--local"), 1),
    (("ack", "--help"), 0),
    (("ack", "a1", "--timeout", "0.2"), 1),
    (("silence", "--help"), 0),
    (("silence", "add", "--help"), 0),
    (("deadletters",), 0),
    (("config", "sample"), 0),
    (("config", "show"), 0),
    (("web", "--help"), 0),
    (("web", "--port", "0"), 2),
]


def _imported(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """Run ``meshwatch ARGS`` in a fresh interpreter: its exit status and imported modules."""
    out = tmp_path / "modules.txt"
    env = {
        **os.environ,
        "MESHWATCH_DATA_DIR": str(tmp_path / "data"),
        "MESHWATCH_MQTT__PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, set(out.read_text().split())


@pytest.mark.parametrize(
    ("args", "status"), _LIGHT_COMMANDS, ids=[" ".join(a) for a, _ in _LIGHT_COMMANDS]
)
def test_command_imports_no_detector_nor_store_client(
    tmp_path: Path, args: tuple[str, ...], status: int
) -> None:
    """The command runs to its usual exit status without importing river, numpy or influxdb."""
    returncode, modules = _imported(tmp_path, *args)
    assert returncode == status
    assert sorted(modules & set(_HEAVY)) == []


def test_pipeline_imports_river() -> None:
    """The pipeline does import river: the guard above looks for the right name."""
    code = "import sys, meshwatch.app; print('river' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True"
