"""``meshwatch record`` and ``meshwatch replay``: broker from settings, bounds, one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import subscribe, wait_for

from meshwatch.commands.recording import record, replay
from meshwatch.errors import MeshwatchError
from meshwatch.localservers import Mosquitto
from simulators.recording import read_recording


@pytest.fixture
def broker_env(mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> Mosquitto:
    """Point the settings at the session broker, as ``MESHWATCH_MQTT__*`` would."""
    monkeypatch.setenv("MESHWATCH_MQTT__HOST", mosquitto.host)
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", str(mosquitto.port))
    return mosquitto


@pytest.mark.integration
def test_record_command_writes_count_messages(
    broker_env: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """`record --count 3` records the (retained) messages and prints a rate line."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    pub.connect(broker_env.host, broker_env.port)
    pub.loop_start()
    for n in range(3):
        pub.publish(f"plant/{unique_topic}/a{n}/telemetry", b"%d" % n, 1, True).wait_for_publish(5)
    out = tmp_path / "cli.jsonl.gz"
    result = CliRunner().invoke(
        record, ["--out", str(out), "--topic", f"plant/{unique_topic}/#", "--count", "3"]
    )
    for n in range(3):  # clear the retained messages
        pub.publish(f"plant/{unique_topic}/a{n}/telemetry", b"", 1, True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()
    assert result.exit_code == 0, result.output
    assert sorted(m.payload for m in read_recording(out)) == [b"0", b"1", b"2"]
    assert "recorded 3 messages in" in result.stdout and "messages/s" in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--out", "x.jsonl.gz", "--duration", "soon"], "invalid duration 'soon'"),
        (["--out", "x.csv", "--count", "1"], "does not end in .jsonl.gz"),
        (["--out", "x.jsonl.gz", "--count", "0"], "--count"),
    ],
    ids=["bad-duration", "bad-out", "zero-count"],
)
def test_record_command_refuses_bad_flags(args: list[str], says: str) -> None:
    """Bad flags are usage errors (exit 2) naming the problem."""
    result = CliRunner().invoke(record, args)
    assert result.exit_code == 2
    assert says in result.output


@pytest.mark.integration
def test_replay_command_publishes_a_csv_and_prints_a_rate(
    broker_env: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """`replay --speed 0` of a CSV publishes every row on the flag-named topic, then a summary."""
    path = tmp_path / "press.csv"
    rows = "".join(f"{1767225600 + n},{n}.5,0\n" for n in range(20))
    path.write_text("timestamp,temp,label\n" + rows)
    client, got = subscribe(broker_env, f"plant/{unique_topic}/#")
    try:
        result = CliRunner().invoke(
            replay,
            [str(path), "--site", unique_topic, "--asset", "p1", "--kind", "press", "--speed", "0"],
        )
        wait_for(lambda: len(got) >= 20, 20, "the CSV rows")
    finally:
        client.loop_stop()
        client.disconnect()
    assert result.exit_code == 0, result.output
    assert {m.topic for m in got} == {f"plant/{unique_topic}/p1/telemetry"}
    assert orjson.loads(got[0].payload)["kind"] == "press"
    assert "replayed 20 messages in" in result.stdout and "messages/s" in result.stdout


def _bad_recording(path: Path, unique_topic: str) -> Path:
    line = b'{"t":1,"topic":"plant/%s/a/telemetry","qos":1,"retain":false,"payload":"x"}\n'
    good = line % unique_topic.encode()
    path.write_bytes(gzip.compress(good + b"{broken\n" + good))
    return path


def test_replay_command_bad_file_is_one_line_error(tmp_path: Path) -> None:
    """A bad line stops the replay with a MeshwatchError naming file and line (main: exit 2)."""
    path = _bad_recording(tmp_path / "bad.jsonl.gz", "t0")
    result = CliRunner().invoke(replay, [str(path), "--speed", "0"])
    assert isinstance(result.exception, MeshwatchError)
    message = str(result.exception)
    assert message.startswith(f"{path}: line 2: bad JSON") and "\n" not in message


@pytest.mark.integration
def test_replay_command_skip_bad_goes_on(
    broker_env: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """With --skip-bad the good lines are replayed and the skipped ones reported on stderr."""
    path = _bad_recording(tmp_path / "bad.jsonl.gz", unique_topic)
    result = CliRunner().invoke(replay, [str(path), "--speed", "0", "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "replayed 2 messages" in result.stdout
    assert "skipped 1 bad lines" in result.stderr and "line 2: bad JSON" in result.stderr


def test_replay_command_unknown_skab_column_is_one_line(tmp_path: Path) -> None:
    """A SKAB file with an unknown column is refused naming file, line and column."""
    path = tmp_path / "0.csv"
    path.write_text("datetime;Current;Humidity\n2020-03-09 10:14:33;1.3;40\n")
    result = CliRunner().invoke(replay, [str(path)])
    assert isinstance(result.exception, MeshwatchError)
    assert str(result.exception).startswith(f"{path}: line 1: unknown column 'Humidity'")


def test_replay_command_missing_file(tmp_path: Path) -> None:
    """A missing file is a one-line MeshwatchError."""
    result = CliRunner().invoke(replay, [str(tmp_path / "none.jsonl.gz")])
    assert isinstance(result.exception, MeshwatchError)
    assert "no such file" in str(result.exception)
