"""The one reader of labelled CSV and SKAB files (common/datasets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.datasets import DatasetError, metric_name, parse_time, read_rows

NS = 1_000_000_000


def _read(tmp_path: Path, text: str) -> list[tuple[int, int, dict[str, float]]]:
    path = tmp_path / "press.csv"
    path.write_text(text)
    rows = read_rows(path, timestamp_column="t", label_column="label")
    return [(row.ns, row.label, row.metrics) for row in rows]


def test_rows_come_in_time_order_with_their_labels(tmp_path: Path) -> None:
    """Rows are sorted by time (stably) and keep their 0/1 label."""
    rows = _read(tmp_path, "t,v,label\n20,2,1\n10,1,0\n20,3,0\n")
    assert rows == [(10 * NS, 0, {"v": 1.0}), (20 * NS, 1, {"v": 2.0}), (20 * NS, 0, {"v": 3.0})]


def test_an_empty_cell_leaves_its_metric_out(tmp_path: Path) -> None:
    """A row keeps the metrics it has values for."""
    assert _read(tmp_path, "t,a,b,label\n10,,2,0\n") == [(10 * NS, 0, {"b": 2.0})]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("t,v\n10,1\n", "line 1: no column 'label'"),
        ("t,v,label\n10,1,2\n", "line 2: label '2' is not 0 or 1"),
        ("t,v,label\n10,1,x\n", "line 2: label 'x' is not 0 or 1"),
        ("t,a b,a_b,label\n10,1,2,0\n", "line 1: two columns give the metric name 'a_b'"),
        ("t,v,label\n10,,0\n", "line 2: no metric values"),
        ("t,v,label\n", "no data rows"),
    ],
    ids=["no-label-column", "label-2", "label-word", "same-metric", "no-values", "no-rows"],
)
def test_a_bad_file_names_the_line_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    """A DatasetError's message starts ``file: line N: problem``."""
    with pytest.raises(DatasetError) as caught:
        _read(tmp_path, text)
    assert str(caught.value).startswith(f"{tmp_path / 'press.csv'}: {problem}")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1583748873", 1583748873 * NS),
        ("1583748873500", 1583748873500 * 1_000_000),
        ("1583748873.25", 1583748873250_000_000),
        ("2020-03-09 10:14:33", 1583748873 * NS),
        ("2020-03-09T11:14:33+01:00", 1583748873 * NS),
        ("2020-03-09T10:14:33.000001", 1583748873 * NS + 1000),
    ],
)
def test_time_cells_are_epochs_by_magnitude_or_iso_in_utc(text: str, ns: int) -> None:
    """Epoch numbers follow the payload's magnitude rule; ISO times without a zone are UTC."""
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["yesterday", "nan", "inf"])
def test_a_time_cell_that_is_no_time_is_refused(text: str) -> None:
    """Words and non-finite numbers are not times."""
    with pytest.raises(ValueError, match=repr(text)):
        parse_time(text)


def test_metric_names_replace_what_ids_cannot_hold() -> None:
    """Characters outside [A-Za-z0-9_.-] become ``_``; at most 64 characters; never empty."""
    assert metric_name(" Volume Flow RateRMS ") == "Volume_Flow_RateRMS"
    assert metric_name("x" * 70) == "x" * 64
    assert metric_name("") == "_"
