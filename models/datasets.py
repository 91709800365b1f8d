"""Labelled series for ``meshwatch evaluate``: SKAB files and generic CSVs as one asset's stream.

The files are read by `common.datasets` (the reader ``meshwatch replay`` uses too); this
module keeps each file's rows as parallel lists with a 0/1 anomaly label per row, and reports
a bad file as a `DatasetError` of models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import datasets
from models.errors import DatasetError


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
    return _series(path, lambda: datasets.read_skab_rows(path, labelled=True))


def read_csv(
    path: Path,
    *,
    timestamp: str,
    label: str,
    delimiter: str = ",",
) -> LabelledSeries:
    """Read a generic labelled CSV: a timestamp column, a 0/1 label column, metric columns.

    Timestamps are RFC 3339 / ISO 8601 (``2020-03-09 10:14:33``, read as UTC when no zone is
    given) or Unix epoch numbers (seconds; ms, µs or ns by magnitude, as in payloads). Rows
    are put in time order (stably) if the file is not. Every other column is a metric.
    """
    return _series(
        path,
        lambda: datasets.read_rows(
            path, timestamp_column=timestamp, label_column=label, delimiter=delimiter
        ),
    )


def _series(path: Path, read: Callable[[], list[datasets.Row]]) -> LabelledSeries:
    """The rows that ``read`` gives, as a series; the reader's error as models' own."""
    try:
        rows = read()
    except datasets.DatasetError as exc:
        raise DatasetError(exc.path, exc.problem, exc.line) from None
    return LabelledSeries(
        str(path),
        [row.ns for row in rows],
        [row.metrics for row in rows],
        [row.label for row in rows],
    )
