r"""Recording files: what `recorder` writes and `replayer` publishes, and their errors.

A recording is a gzip file (``FILE.jsonl.gz``) of JSON lines, one MQTT message a line::

    {"t": 1767225600.125, "topic": "plant/s1/a1/telemetry", "qos": 1, "retain": false,
     "payload": "{\"ts\": ...}"}

``t`` is the arrival time (Unix epoch seconds), ``payload`` the payload's text when its bytes
are valid UTF-8, else ``payload_b64`` holds them in base64: either way the bytes come back
exactly. Unknown keys are ignored, so later versions can add some.

The writer flushes the gzip stream regularly (`RecordingWriter.flush`), so a recorder that is
killed leaves a file whose flushed lines are readable; its end is then a truncated gzip
stream, which `read_recording` reports, or skips with ``skip_bad=True``.

Errors (under `simulators.errors.SimulatorError`)::

    SimulatorError
    ├── RecordingError (also a ValueError)  a bad recording or dataset file: file, line, problem
    └── BrokerError (simulators.errors)     the broker is away, refused us, or did not ack

The recorder and the replayer connect with `common.mqtt` (`Broker`, `Tls`).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from common.closing import Closing
from common.datasets import DatasetError
from simulators.errors import BrokerError, SimulatorError

__all__ = [
    "BrokerError",
    "Recorded",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "parse_line",
    "read_recording",
]

# How many problems a skipping reader keeps for its report (the count goes on).
_KEPT_PROBLEMS = 10


class RecordingError(SimulatorError, DatasetError):
    """A bad recording or dataset file; the message names the file, the line and the problem.

    Attributes
    ----------
    path : str
        The file.
    line : int or None
        The 1-based line, when the problem is on one.
    problem : str
        What is wrong.

    Examples
    --------
    >>> str(RecordingError("run.jsonl.gz", "bad JSON: unexpected character", 3))
    'run.jsonl.gz: line 3: bad JSON: unexpected character'
    """


@dataclass(frozen=True, slots=True)
class Recorded:
    """One MQTT message as recorded: arrival time (epoch s), topic, QoS, retain flag, payload.

    Examples
    --------
    >>> Recorded(1.5, "plant/s/a/telemetry", 1, False, b"{}").qos
    1
    >>> Recorded(1.5, "plant/+/a/telemetry", 1, False, b"{}")
    Traceback (most recent call last):
    ...
    ValueError: topic 'plant/+/a/telemetry' is not a topic name (empty, wildcards or NUL)
    """

    t: float
    topic: str
    qos: int
    retain: bool
    payload: bytes

    def __post_init__(self) -> None:
        if not self.topic or any(c in self.topic for c in "+#\x00"):
            raise ValueError(f"topic {self.topic!r} is not a topic name (empty, wildcards or NUL)")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos {self.qos!r} is not 0, 1 or 2")

    def to_line(self) -> bytes:
        r"""The message as one line of a recording, newline included.

        Examples
        --------
        >>> Recorded(1.5, "a/b", 0, True, b"hi").to_line()
        b'{"t":1.5,"topic":"a/b","qos":0,"retain":true,"payload":"hi"}\n'
        >>> Recorded(1.5, "a/b", 1, False, b"\xff").to_line()
        b'{"t":1.5,"topic":"a/b","qos":1,"retain":false,"payload_b64":"/w=="}\n'
        """
        doc: dict[str, Any] = {
            "t": self.t,
            "topic": self.topic,
            "qos": self.qos,
            "retain": self.retain,
        }
        try:
            doc["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            doc["payload_b64"] = base64.b64encode(self.payload).decode("ascii")
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)


def parse_line(line: bytes) -> Recorded:
    """A recording line as a message; `ValueError` (a one-line reason) when it is not one.

    Examples
    --------
    >>> parse_line(b'{"t":2,"topic":"a/b","qos":1,"retain":false,"payload":"x"}').payload
    b'x'
    >>> parse_line(b'{"t":2,"topic":"a/b","qos":1,"retain":false}')
    Traceback (most recent call last):
    ...
    ValueError: neither 'payload' nor 'payload_b64'
    """
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"a JSON {type(doc).__name__}, not an object")
    t = _field(doc, "t", (int, float), "a number (epoch seconds)")
    topic = _field(doc, "topic", str, "a string")
    qos = _field(doc, "qos", int, "0, 1 or 2")
    retain = _field(doc, "retain", bool, "true or false")
    if isinstance(t, bool) or isinstance(qos, bool):
        raise ValueError("'t' and 'qos' must be numbers, not true/false")
    if ("payload" in doc) == ("payload_b64" in doc):
        raise ValueError(
            "both 'payload' and 'payload_b64'"
            if "payload" in doc
            else "neither 'payload' nor 'payload_b64'"
        )
    if "payload" in doc:
        payload = _field(doc, "payload", str, "a string").encode("utf-8")
    else:
        text = _field(doc, "payload_b64", str, "a base64 string")
        try:
            payload = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError(f"'payload_b64' is not base64: {text[:40]!r}") from None
    return Recorded(float(t), topic, qos, retain, payload)


def _field(doc: dict[str, Any], name: str, types: type | tuple[type, ...], expected: str) -> Any:
    if name not in doc:
        raise ValueError(f"field {name!r} missing")
    value = doc[name]
    if not isinstance(value, types):
        raise ValueError(
            f"field {name!r} is {str(orjson.dumps(value), 'utf-8')[:40]}, not {expected}"
        )
    return value


class Recording:
    """The messages of a recording file, in file order; iterate it (again) to read them.

    Each iteration opens the file anew (so a looping replay can go round). A bad line raises
    `RecordingError`, or with ``skip_bad`` is skipped: `skipped` counts them (in the latest
    pass) and `problems` keeps the first few. A truncated gzip stream (a killed recorder)
    ends the pass there, counted as one bad line.
    """

    def __init__(self, path: Path, *, skip_bad: bool = False) -> None:
        self.path = Path(path)
        self.skip_bad = skip_bad
        self.skipped = 0
        self.problems: list[RecordingError] = []

    def __iter__(self) -> Iterator[Recorded]:
        self.skipped = 0
        self.problems = []
        try:
            handle = gzip.open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise RecordingError(self.path, exc.strerror or str(exc)) from None
        with handle:
            number = 0
            while True:
                number += 1
                try:
                    line = handle.readline()
                except gzip.BadGzipFile:
                    raise RecordingError(
                        self.path, "not a gzip file (recordings are FILE.jsonl.gz)", number
                    ) from None
                except (EOFError, zlib.error) as exc:
                    self._bad(f"truncated or corrupt gzip stream ({exc})", number)
                    return
                if not line:
                    return
                if not line.endswith(b"\n"):
                    try:
                        yield parse_line(line)
                    except ValueError as exc:
                        self._bad(f"truncated last line ({exc})", number)
                    return
                if not line.strip():
                    continue
                try:
                    message = parse_line(line)
                except ValueError as exc:
                    self._bad(str(exc), number)
                    continue
                yield message

    def _bad(self, problem: str, line: int) -> None:
        error = RecordingError(self.path, problem, line)
        if not self.skip_bad:
            raise error
        self.skipped += 1
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append(error)


def read_recording(path: Path, *, skip_bad: bool = False) -> Recording:
    """The messages of a recording file, read lazily (see `Recording`).

    Parameters
    ----------
    path
        A ``FILE.jsonl.gz`` written by `RecordingWriter` (``meshwatch record``).
    skip_bad
        Skip bad lines (and a truncated end) instead of raising `RecordingError`; the
        returned `Recording` counts them in ``skipped``.
    """
    return Recording(path, skip_bad=skip_bad)


class RecordingWriter(Closing):
    r"""Writes messages to a recording file; a context manager that closes it.

    `flush` pushes what was written to the disk as a complete gzip block, so a reader sees
    every flushed line even if the writer dies before `close`.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "run.jsonl.gz"
    >>> with RecordingWriter(path) as writer:
    ...     writer.write(Recorded(1.0, "a/b", 1, False, b"\x00\xff"))
    >>> [m.payload for m in read_recording(path)]
    [b'\x00\xff']
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._raw: IO[bytes] = self.path.open("wb")
        except OSError as exc:
            raise RecordingError(self.path, exc.strerror or str(exc)) from None
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", filename="")
        self.written = 0

    def write(self, message: Recorded) -> None:
        """Append one message (buffered until `flush` or `close`)."""
        self._gzip.write(message.to_line())
        self.written += 1

    def flush(self) -> None:
        """Make everything written so far readable from the file (a gzip sync flush)."""
        self._gzip.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()

    def close(self) -> None:
        """Finish the gzip stream and close the file."""
        if not self._gzip.closed:
            self._gzip.close()
            self._raw.close()
