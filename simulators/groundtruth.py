"""Ground truth of a simulated run: which asset had which fault, from when to when.

The labels file has one JSON object per line, times in RFC 3339 (UTC, milliseconds)::

    {"site": "berlin", "asset": "cnc-1", "fault": "bearing_wear",
     "start": "2026-01-01T00:20:00.000Z", "end": "2026-01-01T02:00:00.000Z"}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from common.timestamps import format_rfc3339, parse_rfc3339
from simulators.errors import SimulatorError


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """One injected fault: where, which, and its start and end (ns; end None: until the end)."""

    site: str
    asset: str
    fault: str
    start: int
    end: int | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"label {self.site}/{self.asset}:{self.fault} ends before it starts")


def write_labels(path: Path, labels: Sequence[GroundTruth], run_end: int) -> None:
    """Write labels as JSON lines; an open end (None) becomes ``run_end``.

    Examples
    --------
    >>> import tempfile
    >>> label = GroundTruth("berlin", "cnc-1", "overheating", 1_767_225_600_000_000_000, None)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "labels.jsonl"
    ...     write_labels(path, [label], run_end=1_767_225_660_000_000_000)
    ...     print(path.read_text(), end="")
    ...     read_labels(path)[0].end
    {"site":"berlin","asset":"cnc-1","fault":"overheating","start":"2026-01-01T00:00:00.000Z",\
"end":"2026-01-01T00:01:00.000Z"}
    1767225660000000000
    """
    lines = []
    for label in labels:
        end = run_end if label.end is None else min(label.end, max(run_end, label.start))
        doc = {
            "site": label.site,
            "asset": label.asset,
            "fault": label.fault,
            "start": format_rfc3339(label.start),
            "end": format_rfc3339(end),
        }
        lines.append(orjson.dumps(doc) + b"\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(lines))
    tmp.replace(path)


def read_labels(path: Path) -> list[GroundTruth]:
    """Read a labels file; `SimulatorError` names the file and line of a bad entry."""
    labels = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"{path}: cannot read the labels file: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            end = doc.get("end")
            labels.append(
                GroundTruth(
                    site=str(doc["site"]),
                    asset=str(doc["asset"]),
                    fault=str(doc["fault"]),
                    start=parse_rfc3339(doc["start"]),
                    end=None if end is None else parse_rfc3339(end),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SimulatorError(f"{path}: line {number}: not a label: {exc}") from None
    return labels
