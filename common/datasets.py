"""Readers of labelled telemetry files: SKAB's format and a generic CSV.

One reader for ``meshwatch evaluate`` (`models.datasets`) and ``meshwatch replay``
(`simulators.datasets`). A file is one asset's stream, one row a reading:

- SKAB: ``;``-separated, ``datetime`` column, metric columns, then ``anomaly`` and
  ``changepoint`` labels (absent from ``anomaly-free.csv``). Other columns are unknown and an
  error, so a file that is not SKAB is not read as SKAB.
- Generic CSV: a timestamp column (RFC 3339 / ISO 8601, UTC when no zone is given, or Unix
  epoch seconds, ms, µs or ns by magnitude, as in payloads), an optional 0/1 label column,
  every other column a metric.
- A metric's name is its column name with every character outside ``[A-Za-z0-9_.-]`` replaced
  by ``_`` (`metric_name`). An empty cell leaves that metric out of the row; a row needs one
  value at least, and a file 1 to 64 metric columns (a reading's limit).
- Rows are put in time order (stably) when the file is not.

A bad file raises `DatasetError` naming the file, the line and the problem; with an ``on_bad``
callback a bad *row* is reported to it and skipped instead (a bad header never is).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from common.timestamps import parse_epoch

__all__ = [
    "SKAB_LABELS",
    "SKAB_METRICS",
    "SKAB_TIMESTAMP",
    "DatasetError",
    "Row",
    "metric_name",
    "parse_time",
    "read_rows",
    "read_skab_rows",
]

SKAB_TIMESTAMP = "datetime"
SKAB_LABELS = ("anomaly", "changepoint")
SKAB_METRICS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
# docs/design.md §2: a reading carries 1 to 64 metrics, IDs are at most 64 characters.
_MAX_METRICS = 64
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DatasetError(ValueError):
    """A bad dataset file; the message names the file, the line (when on one) and the problem.

    Examples
    --------
    >>> str(DatasetError("press.csv", "no data rows")), DatasetError("a.csv", "x", 3).line
    ('press.csv: no data rows', 3)
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


OnBad = Callable[[DatasetError], None]


@dataclass(frozen=True, slots=True)
class Row:
    """One reading of a file: its line, time (ns), 0/1 label (0 without a label column), metrics."""

    line: int
    ns: int
    label: int
    metrics: dict[str, float]


def metric_name(column: str) -> str:
    """A column name as a valid metric name.

    Examples
    --------
    >>> metric_name("Volume Flow RateRMS"), metric_name("temp (°C)")
    ('Volume_Flow_RateRMS', 'temp___C_')
    """
    return _NOT_ID.sub("_", column.strip())[:64] or "_"


def parse_time(text: str) -> int:
    """A timestamp cell as nanoseconds since the epoch; `ValueError` when it is none.

    Examples
    --------
    >>> parse_time("2020-03-09 10:14:33"), parse_time("1583748873.5")
    (1583748873000000000, 1583748873500000000)
    >>> parse_time("1583748873500")  # ms, by magnitude
    1583748873500000000
    """
    try:
        number = float(text)
    except ValueError:
        pass
    else:  # the payload contract's rule: seconds, or ms / µs / ns by magnitude
        if not math.isfinite(number):
            raise ValueError(f"timestamp {text!r} is not a time")
        return parse_epoch(int(number) if number.is_integer() else number)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not RFC 3339 or an epoch number") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def read_skab_rows(path: Path, *, labelled: bool, on_bad: OnBad | None = None) -> list[Row]:
    """The rows of a SKAB file; with ``labelled``, its ``anomaly`` column is each row's label."""
    return read_rows(
        path,
        timestamp_column=SKAB_TIMESTAMP,
        label_column="anomaly" if labelled else None,
        delimiter=";",
        ignore=SKAB_LABELS,
        known=(SKAB_TIMESTAMP, *SKAB_METRICS, *SKAB_LABELS),
        on_bad=on_bad,
    )


def read_rows(
    path: Path,
    *,
    timestamp_column: str,
    label_column: str | None = None,
    delimiter: str = ",",
    ignore: Sequence[str] = (),
    known: Sequence[str] | None = None,
    on_bad: OnBad | None = None,
) -> list[Row]:
    r"""The rows of a labelled CSV file, in time order.

    Parameters
    ----------
    path
        The file.
    timestamp_column
        The column of the row times (required).
    label_column
        The 0/1 label column (then required), or None to read no label.
    delimiter
        The field separator.
    ignore
        Further columns that are not metrics (when present).
    known
        When given, the only columns the header may have: any other is an error.
    on_bad
        Called with each bad row's error, which is then skipped; without it one raises.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "press.csv"
    >>> _ = path.write_text("timestamp,temp (C),label\n1583748873,61.5,0\n")
    >>> read_rows(path, timestamp_column="timestamp", label_column="label")
    [Row(line=2, ns=1583748873000000000, label=0, metrics={'temp__C_': 61.5})]
    """
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(path, exc.strerror or str(exc)) from None
    with handle:
        columns = (timestamp_column, label_column, delimiter, ignore, known)
        rows = list(_rows(path, handle, *columns, on_bad))
    if not rows:
        raise DatasetError(path, "no data rows")
    rows.sort(key=lambda row: row.ns)  # stable: rows with equal times keep their order
    return rows


def _rows(
    path: Path,
    handle: IO[str],
    timestamp_column: str,
    label_column: str | None,
    delimiter: str,
    ignore: Sequence[str],
    known: Sequence[str] | None,
    on_bad: OnBad | None,
) -> Iterator[Row]:
    reader = csv.reader(handle, delimiter=delimiter)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise DatasetError(path, "empty file")
        metrics = _metric_columns(path, header, timestamp_column, label_column, ignore, known)
        t_at = header.index(timestamp_column)
        l_at = None if label_column is None else header.index(label_column)
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            try:
                yield _row(line, record, header, t_at, l_at, metrics)
            except ValueError as exc:
                error = DatasetError(path, str(exc), line)
                if on_bad is None:
                    raise error from None
                on_bad(error)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"not a CSV file: {exc}", line) from None


def _metric_columns(
    path: Path,
    header: list[str],
    timestamp_column: str,
    label_column: str | None,
    ignore: Sequence[str],
    known: Sequence[str] | None,
) -> list[tuple[int, str]]:
    if known is not None:
        unknown = [c for c in header if c not in known]
        if unknown:
            raise DatasetError(
                path, f"unknown column {unknown[0]!r} (expected: {', '.join(known)})", 1
            )
    for needed in (timestamp_column, label_column):
        if needed is not None and needed not in header:
            raise DatasetError(path, f"no column {needed!r} (columns: {', '.join(header)})", 1)
    not_metrics = {timestamp_column, label_column, *ignore}
    metrics = [(i, metric_name(c)) for i, c in enumerate(header) if c not in not_metrics]
    names = [name for _, name in metrics]
    for name in names:
        if names.count(name) > 1:
            raise DatasetError(path, f"two columns give the metric name {name!r}", 1)
    if not 1 <= len(metrics) <= _MAX_METRICS:
        raise DatasetError(
            path, f"{len(metrics)} metric columns: a reading has 1 to {_MAX_METRICS}", 1
        )
    return metrics


def _row(
    line: int,
    record: list[str],
    header: list[str],
    t_at: int,
    l_at: int | None,
    metrics: list[tuple[int, str]],
) -> Row:
    if len(record) != len(header):
        raise ValueError(f"{len(record)} fields, the header has {len(header)} (unknown columns?)")
    ns = parse_time(record[t_at])
    label = 0 if l_at is None else _label(record[l_at])
    values = {}
    for i, name in metrics:
        text = record[i].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"column {header[i]!r}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"column {header[i]!r}: {text!r} is not a finite number")
        values[name] = value
    if not values:
        raise ValueError("no metric values")
    return Row(line, ns, label, values)


def _label(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in (0.0, 1.0):
        raise ValueError(f"label {text!r} is not 0 or 1")
    return int(value)
