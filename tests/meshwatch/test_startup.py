"""The commands that never score start without importing the detectors (issue 12).

Guarded by what they import, not by timing: river and numpy (with scipy and pandas behind
them) and the InfluxDB client cost every command seconds of start-up. Below them, each of
pydantic (with pydantic-settings), paho's client (with ssl, http and email) and rich costs a
tenth of the 0.3 s a light command may take: a command imports them only when it uses them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alerts.health.status import AssetHealth
from alerts.state import AlertState, Changes
from ingest.deadletters import DeadLetter, DeadLetters
from ingest.errors import Reason
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


def _imported(tmp_path: Path, *args: str, data_dir: Path | None = None) -> tuple[int, set[str]]:
    """Run ``meshwatch ARGS`` in a fresh interpreter: its exit status and imported modules."""
    out = tmp_path / "modules.txt"
    env = {
        **os.environ,
        "MESHWATCH_DATA_DIR": str(data_dir or tmp_path / "data"),
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


def _loads_river_anomaly(profiles: str) -> bool:
    """Whether a model registry over ``profiles`` (Python source) loads river.anomaly."""
    code = (
        "import sys, meshwatch.app; from models.registry import ModelRegistry; "
        "from models.profiles import ProfileSelector; "
        "from models.settings import DetectorSpec, ModelsSettings, ProfileSettings; "
        f"ModelRegistry(ProfileSelector({profiles}), None); "
        "print('river.anomaly' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() in ("True", "False"), done.stderr
    return done.stdout.strip() == "True"


def test_pipeline_of_the_default_profile_leaves_river_s_anomaly_module_unloaded() -> None:
    """river.anomaly (and its scipy) load only for a profile that names such a detector."""
    assert not _loads_river_anomaly("ModelsSettings().profiles")


def test_a_profile_with_half_space_trees_loads_it_with_the_registry() -> None:
    """A registry loads river.anomaly at once when a profile needs it, not at a first reading."""
    hst = "ProfileSettings(name='default', detectors=(DetectorSpec(type='half_space_trees'),))"
    assert _loads_river_anomaly(f"({hst},)")


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    """A data dir as a pipeline leaves it: a saved health map and one dead letter."""
    data_dir = tmp_path / "kept"
    data_dir.mkdir()
    state = AlertState(data_dir / "alerts.db")
    try:
        health = AssetHealth("plant-a", "cnc-1", "cnc-mill", score=0.12)
        state.save(Changes(health={("plant-a", "cnc-1"): health.to_state()}), 0.0)
    finally:
        state.close()
    letters = DeadLetters(data_dir / "deadletters.db")
    try:
        letters.add([DeadLetter(1, "plant/a/b/telemetry", Reason.BAD_JSON, "not JSON", b"{")])
    finally:
        letters.close()
    return data_dir


# Commands that print help only: the settings (pydantic) are loaded by the command itself.
_HELP = [("--help",), ("status", "--help"), ("ack", "--help"), ("silence", "add", "--help")]


@pytest.mark.parametrize("args", _HELP, ids=[" ".join(a) for a in _HELP])
def test_help_imports_no_pydantic(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Printing help imports neither pydantic nor the settings: they load only to run."""
    returncode, modules = _imported(tmp_path, *args)
    assert returncode == 0
    assert sorted(modules & {"pydantic", "pydantic_settings"}) == []


# Commands that never talk to the broker, with the data dir they read (kept: a pipeline's).
_OFFLINE = [
    (("status", "--local"), True),
    (("status", "--local"), False),
    (("deadletters",), True),
    (("deadletters",), False),
    (("config", "show"), False),
]


@pytest.mark.parametrize(
    ("args", "with_state"),
    _OFFLINE,
    ids=[" ".join(a) + (" (kept)" if k else " (empty)") for a, k in _OFFLINE],
)
def test_offline_command_imports_no_mqtt_client(
    tmp_path: Path, kept: Path, args: tuple[str, ...], with_state: bool
) -> None:
    """A command that never connects imports no paho client, nor ssl's users behind it."""
    _, modules = _imported(tmp_path, *args, data_dir=kept if with_state else None)
    assert sorted(m for m in modules if m.startswith(("paho.mqtt.client", "http.client"))) == []


_JSON = [("status", "--local", "--json"), ("deadletters", "--json")]


@pytest.mark.parametrize("args", _JSON, ids=[" ".join(a) for a in _JSON])
def test_json_output_imports_no_rich(tmp_path: Path, kept: Path, args: tuple[str, ...]) -> None:
    """With --json the command prints JSON lines, and imports no table printer (rich)."""
    returncode, modules = _imported(tmp_path, *args, data_dir=kept)
    assert returncode == 0
    assert sorted(m for m in modules if m.split(".")[0] == "rich") == []


def test_table_output_imports_rich(tmp_path: Path, kept: Path) -> None:
    """Without --json the saved health map is a table: the guard above names the right module."""
    returncode, modules = _imported(tmp_path, "status", "--local", data_dir=kept)
    assert returncode == 0
    assert "rich" in modules
