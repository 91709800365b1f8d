"""SKAB and generic CSV files as telemetry messages, and their replay through a broker."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from pathlib import Path

import orjson
import pytest
from support import subscribe, wait_for

from meshwatch.localservers import Mosquitto
from simulators.datasets import csv_messages, default_ids, detect_format, skab_messages
from simulators.recording import RecordingError
from simulators.replayer import replay

SKAB = Path("/work/shared/data/skab")
VALVE = SKAB / "valve1" / "0.csv"
SKAB_NAMES = {
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume_Flow_RateRMS",
}
needs_skab = pytest.mark.skipif(not VALVE.exists(), reason=f"SKAB data not at {SKAB}")


def _data_rows(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()[1:] if line.strip())


def _ts(payload: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(payload)["ts"])


@needs_skab
def test_skab_file_gives_one_message_per_row() -> None:
    """Every row of a SKAB file is one message, with SKAB's metric names and no labels."""
    messages = skab_messages(VALVE, kind="pump")
    assert len(messages) == _data_rows(VALVE)
    first = orjson.loads(messages[0].payload)
    assert first == {
        "ts": "2020-03-09T10:14:33.000Z",
        "kind": "pump",
        "metrics": {
            "Accelerometer1RMS": 0.0265878,
            "Accelerometer2RMS": 0.0401113,
            "Current": 1.3302,
            "Pressure": 0.054711,
            "Temperature": 79.3366,
            "Thermocouple": 26.0199,
            "Voltage": 233.062,
            "Volume_Flow_RateRMS": 32.0,
        },
    }
    assert all(set(orjson.loads(m.payload)["metrics"]) == SKAB_NAMES for m in messages)


@needs_skab
def test_skab_topic_and_times_follow_the_file() -> None:
    """Topic from the file name, qos 1, ts strictly increasing and equal to the message time."""
    messages = skab_messages(VALVE)
    assert {m.topic for m in messages} == {"plant/skab/valve1-0/telemetry"}
    assert all(m.qos == 1 and not m.retain for m in messages)
    stamps = [_ts(m.payload) for m in messages]
    assert all(a < b for a, b in pairwise(stamps))
    assert [s.timestamp() for s in stamps] == [m.t for m in messages]


@needs_skab
def test_anomaly_free_skab_file_has_no_labels_and_is_accepted() -> None:
    """SKAB's anomaly-free file (no label columns) is read too."""
    path = SKAB / "anomaly-free" / "anomaly-free.csv"
    messages = skab_messages(path, site="lab", asset="pump1")
    assert len(messages) == _data_rows(path)
    assert messages[0].topic == "plant/lab/pump1/telemetry"


@needs_skab
def test_skab_is_detected_by_header() -> None:
    """A SKAB file is detected as skab, other CSVs as csv, .gz as a recording."""
    assert detect_format(VALVE) == "skab"
    assert detect_format(Path("x.jsonl.gz")) == "recording"


def test_default_ids_come_from_the_file_name() -> None:
    """The asset is <dir>-<stem>, the site the format's name, sanitised."""
    assert default_ids(Path("/d/valve1/0.csv"), "skab") == ("skab", "valve1-0")
    assert default_ids(Path("/d/my line/press 2.csv"), "csv") == ("csv", "my_line-press_2")


def _csv(tmp_path: Path, text: str, name: str = "press.csv") -> Path:
    path = tmp_path / "line3" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_generic_csv_gives_design_payloads(tmp_path: Path) -> None:
    """Each CSV row is a payload with RFC 3339 ms ts, sanitised names, no label; sorted by time."""
    path = _csv(
        tmp_path,
        "timestamp,temp (C),rpm,label\n"
        "2026-01-01T00:00:01.250Z,61.5,1200,0\n"
        "2026-01-01T00:00:00Z,61.0,,1\n"
        "1767225602,62,1210,0\n",
    )
    messages = csv_messages(path, kind="cnc-mill", topic="f/{site}/{asset}/t")
    assert [m.topic for m in messages] == ["f/csv/line3-press/t"] * 3
    assert [orjson.loads(m.payload) for m in messages] == [
        {"ts": "2026-01-01T00:00:00.000Z", "kind": "cnc-mill", "metrics": {"temp__C_": 61.0}},
        {
            "ts": "2026-01-01T00:00:01.250Z",
            "kind": "cnc-mill",
            "metrics": {"temp__C_": 61.5, "rpm": 1200.0},
        },
        {
            "ts": "2026-01-01T00:00:02.000Z",
            "kind": "cnc-mill",
            "metrics": {"temp__C_": 62.0, "rpm": 1210.0},
        },
    ]
    assert [m.t for m in messages] == [1767225600.0, 1767225601.25, 1767225602.0]


def test_csv_column_flags_are_honoured(tmp_path: Path) -> None:
    """Timestamp/label column names and delimiter come from the arguments."""
    path = _csv(tmp_path, "when;v;y\n1767225600000;1.5;1\n")
    [message] = csv_messages(
        path, site="s", asset="a", timestamp_column="when", label_column="y", delimiter=";"
    )
    assert orjson.loads(message.payload) == {
        "ts": "2026-01-01T00:00:00.000Z",
        "metrics": {"v": 1.5},
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("time,v\n1,2\n", "line 1: no column 'timestamp'"),
        ("timestamp,v\n1767225600,2,3\n", "line 2: 3 fields, the header has 2 (unknown columns?)"),
        ("timestamp,v\n1767225600,2\n1767225601,warm\n", "line 3: column 'v': 'warm' is not"),
        ("timestamp,v\nyesterday,2\n", "line 2: timestamp 'yesterday' is not RFC 3339"),
        ("timestamp,v\n1767225600,nan\n", "line 2: column 'v': 'nan' is not a finite"),
        ("timestamp,label\n1767225600,0\n", "line 1: 0 metric columns"),
    ],
    ids=["no-timestamp", "extra-field", "not-number", "bad-time", "nan", "no-metrics"],
)
def test_bad_csv_names_file_line_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    """A bad CSV raises one line naming the file, the line and the problem."""
    path = _csv(tmp_path, text)
    with pytest.raises(RecordingError) as caught:
        csv_messages(path)
    assert str(caught.value) == f"{path}: {problem}" or str(caught.value).startswith(
        f"{path}: {problem}"
    )


def test_unknown_column_in_a_skab_file_is_refused(tmp_path: Path) -> None:
    """A column SKAB does not have is named, on line 1."""
    path = _csv(tmp_path, "datetime;Current;Humidity\n2020-03-09 10:14:33;1.3;40\n")
    with pytest.raises(RecordingError, match=r"press\.csv: line 1: unknown column 'Humidity'"):
        skab_messages(path)


def test_on_bad_skips_bad_rows_and_goes_on(tmp_path: Path) -> None:
    """With on_bad, bad rows are reported to it and the good ones kept."""
    path = _csv(tmp_path, "timestamp,v\n1767225600,1\n1767225601,x\n1767225602,3,4\n1767225603,5\n")
    bad: list[RecordingError] = []
    messages = csv_messages(path, on_bad=bad.append)
    assert len(messages) == 2
    assert [e.line for e in bad] == [3, 4]


@pytest.mark.integration
@needs_skab
def test_skab_replay_publishes_every_row(mosquitto: Mosquitto, unique_topic: str) -> None:
    """A SKAB file replayed as fast as possible arrives whole, in order, on its topic."""
    messages = skab_messages(VALVE, site=unique_topic, topic="plant/{site}/{asset}/telemetry")
    client, got = subscribe(mosquitto, f"plant/{unique_topic}/#")
    try:
        summary = replay(messages, mosquitto.host, mosquitto.port, speed=0, progress=False)
        wait_for(lambda: len(got) >= len(messages), 30, "every SKAB row")
    finally:
        client.loop_stop()
        client.disconnect()
    assert summary.messages == len(messages)
    assert [(m.topic, m.payload) for m in got] == [(m.topic, m.payload) for m in messages]


@pytest.mark.integration
def test_csv_replay_publishes_every_row(
    mosquitto: Mosquitto, unique_topic: str, tmp_path: Path
) -> None:
    """A generic CSV replayed as fast as possible arrives whole on the flag-named topic."""
    rows = "".join(f"{1767225600 + n},{n * 0.5},{n % 2}\n" for n in range(50))
    path = _csv(tmp_path, "timestamp,temp,label\n" + rows)
    messages = csv_messages(path, site=unique_topic, asset="m1")
    client, got = subscribe(mosquitto, f"plant/{unique_topic}/#")
    try:
        replay(messages, mosquitto.host, mosquitto.port, speed=0, progress=False)
        wait_for(lambda: len(got) >= 50, 30, "every CSV row")
    finally:
        client.loop_stop()
        client.disconnect()
    assert {m.topic for m in got} == {f"plant/{unique_topic}/m1/telemetry"}
    assert [orjson.loads(m.payload)["metrics"]["temp"] for m in got] == [n * 0.5 for n in range(50)]
