"""Readers of labelled telemetry files: SKAB's format and a generic CSV.

A file is one asset's stream in time order, with a 0/1 anomaly label per row. Column names
become metric names by replacing every character outside ``[A-Za-z0-9_.-]`` with ``_``
(``Volume Flow RateRMS`` becomes ``Volume_Flow_RateRMS``).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from common.timestamps import parse_epoch
from models.errors import DatasetError

_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")


def metric_name(column: str) -> str:
    """A column name as a valid metric name.

    Examples
    --------
    >>> metric_name("Volume Flow RateRMS"), metric_name("temp (°C)")
    ('Volume_Flow_RateRMS', 'temp___C_')
    """
    return _NOT_ID.sub("_", column.strip())[:64] or "_"


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    """One asset's labelled stream: timestamps (ns), metric rows and 0/1 labels."""

    name: str
    timestamps: list[int]
    rows: list[dict[str, float]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.rows)


def read_skab(path: Path) -> LabelledSeries:
    """Read a SKAB file: ``;``-separated, ``datetime`` first, ``anomaly``/``changepoint`` last."""
    return read_csv(
        path, timestamp="datetime", label="anomaly", delimiter=";", ignore=("changepoint",)
    )


def read_csv(
    path: Path,
    *,
    timestamp: str,
    label: str,
    delimiter: str = ",",
    ignore: tuple[str, ...] = (),
) -> LabelledSeries:
    """Read a generic labelled CSV: a timestamp column, a 0/1 label column, metric columns.

    Timestamps are RFC 3339 / ISO 8601 (``2020-03-09 10:14:33``, read as UTC when no zone is
    given) or Unix epoch numbers (seconds; ms, µs or ns by magnitude, as in payloads). Rows
    are put in time order (stably) if the file is not. Every other column, except those in
    `ignore`, is a metric.
    """
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(str(path), exc.strerror or str(exc)) from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(str(path), "empty file") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(str(path), f"not a CSV file: {exc}", 1) from None
        for needed in (timestamp, label):
            if needed not in header:
                raise DatasetError(
                    str(path), f"no column {needed!r} (columns: {', '.join(header)})", 1
                )
        t_at, l_at = header.index(timestamp), header.index(label)
        skip = {t_at, l_at, *(header.index(c) for c in ignore if c in header)}
        metrics = [(i, metric_name(c)) for i, c in enumerate(header) if i not in skip]
        timestamps, rows, labels = [], [], []
        line = 1
        try:
            for line, record in enumerate(reader, start=2):
                if not record:
                    continue
                if len(record) != len(header):
                    raise DatasetError(
                        str(path), f"{len(record)} fields, the header has {len(header)}", line
                    )
                timestamps.append(_timestamp(record[t_at]))
                labels.append(_label(record[l_at]))
                rows.append({name: _number(record[i], name) for i, name in metrics})
        except ValueError as exc:
            raise DatasetError(str(path), str(exc), line) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(str(path), f"not a CSV file: {exc}", line) from None
    if not rows:
        raise DatasetError(str(path), "no data rows")
    if any(b < a for a, b in pairwise(timestamps)):
        order = sorted(range(len(rows)), key=timestamps.__getitem__)
        timestamps = [timestamps[i] for i in order]
        rows = [rows[i] for i in order]
        labels = [labels[i] for i in order]
    return LabelledSeries(str(path), timestamps, rows, labels)


def _timestamp(text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        pass
    else:  # the payload contract's rule: seconds, or ms / µs / ns by magnitude
        return parse_epoch(int(number) if number.is_integer() else number)
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1e6) * 1000


def _label(text: str) -> int:
    value = float(text)
    if value not in (0.0, 1.0):
        raise ValueError(f"label {text!r} is not 0 or 1")
    return int(value)


def _number(text: str, name: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{name} is {text!r}, not a finite number")
    return value
