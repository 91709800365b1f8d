"""The recording file format: exact bytes back, and one-line errors naming file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from simulators.recording import (
    Recorded,
    RecordingError,
    RecordingWriter,
    read_recording,
)

GOOD = b'{"t":1.0,"topic":"plant/s/a/telemetry","qos":1,"retain":false,"payload":"{}"}\n'


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def test_round_trip_keeps_every_field_and_byte(tmp_path: Path) -> None:
    """Written messages read back equal, non-UTF-8 and empty payloads included."""
    messages = [
        Recorded(1.25, "plant/s/a/telemetry", 1, False, b'{"ts":1}'),
        Recorded(1.5, "plant/s/b/telemetry", 0, True, bytes(range(256))),
        Recorded(2.0, "x/y", 2, False, b""),
        Recorded(2.5, "x/\u00e9", 1, False, "\u00e9t\u00e9 \u2603".encode()),
    ]
    path = tmp_path / "run.jsonl.gz"
    with RecordingWriter(path) as writer:
        for message in messages:
            writer.write(message)
    assert list(read_recording(path)) == messages


def test_not_gzip_names_file_and_line(tmp_path: Path) -> None:
    """A plain text file is refused as not gzip, naming the file and line 1."""
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(GOOD)
    with pytest.raises(RecordingError, match=r"plain\.jsonl\.gz: line 1: not a gzip file"):
        list(read_recording(path))


def test_truncated_last_line_is_reported(tmp_path: Path) -> None:
    """A last line cut short is 'truncated last line' on its line number."""
    path = _gz(tmp_path / "cut.jsonl.gz", GOOD + GOOD[:30])
    with pytest.raises(RecordingError, match=r"cut\.jsonl\.gz: line 2: truncated last line"):
        list(read_recording(path))


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    """A line that is not JSON is reported with its number."""
    path = _gz(tmp_path / "bad.jsonl.gz", GOOD + GOOD + b"{not json\n" + GOOD)
    with pytest.raises(RecordingError, match=r"bad\.jsonl\.gz: line 3: bad JSON"):
        list(read_recording(path))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"t":1,"qos":1,"retain":false,"payload":""}', "field 'topic' missing"),
        (b'{"t":1,"topic":"a","qos":"1","retain":false,"payload":""}', "field 'qos' is"),
        (b'{"t":1,"topic":"a","qos":1,"retain":false}', "neither 'payload' nor 'payload_b64'"),
        (b'{"t":1,"topic":"a","qos":1,"retain":false,"payload_b64":"!!"}', "not base64"),
        (b'{"t":1,"topic":"a","qos":3,"retain":false,"payload":""}', "qos 3 is not"),
        (b"[1, 2]", "not an object"),
    ],
    ids=["missing", "wrong-type", "no-payload", "bad-base64", "bad-qos", "array"],
)
def test_wrong_fields_name_the_field(tmp_path: Path, line: bytes, problem: str) -> None:
    """A line with a missing or wrong field names the field on its line."""
    path = _gz(tmp_path / "fields.jsonl.gz", GOOD + line + b"\n")
    with pytest.raises(RecordingError, match="line 2: ") as caught:
        list(read_recording(path))
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_skip_bad_goes_on_and_counts(tmp_path: Path) -> None:
    """With skip_bad the good lines are read, the bad ones counted and kept as problems."""
    path = _gz(tmp_path / "mixed.jsonl.gz", GOOD + b"{oops\n" + GOOD + b"[]\n" + GOOD + GOOD[:9])
    recording = read_recording(path, skip_bad=True)
    assert len(list(recording)) == 3
    assert recording.skipped == 3
    assert [p.line for p in recording.problems] == [2, 4, 6]


def test_killed_writer_leaves_flushed_lines_readable(tmp_path: Path) -> None:
    """A writer that never closed: flushed lines read with skip_bad, else a truncated stream."""
    path = tmp_path / "killed.jsonl.gz"
    writer = RecordingWriter(path)
    for n in range(5):
        writer.write(Recorded(float(n), "a/b", 1, False, b"%d" % n))
    writer.flush()
    writer._raw.flush()  # the process dies here: no gzip trailer is ever written
    data = path.read_bytes()
    writer.close()
    path.write_bytes(data)
    with pytest.raises(RecordingError, match="line 6: truncated or corrupt gzip stream"):
        list(read_recording(path))
    recording = read_recording(path, skip_bad=True)
    assert [m.payload for m in recording] == [b"0", b"1", b"2", b"3", b"4"]
    assert recording.skipped == 1


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """A file that does not exist is named in the error."""
    with pytest.raises(RecordingError, match=r"nothere\.jsonl\.gz: No such file"):
        list(read_recording(tmp_path / "nothere.jsonl.gz"))
