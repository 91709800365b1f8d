"""``meshwatch evaluate``: files found, read, evaluated with the live model code, reported."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from models.datasets import LabelledSeries, read_csv, read_skab
from models.errors import DatasetError
from models.evaluation import Confusion, FileResult, Window, evaluate
from models.plot import plot
from models.settings import ProfileSettings


@dataclass(frozen=True, slots=True)
class Reader:
    """How labelled files are read: SKAB's format, or a generic CSV described by flags."""

    format: str
    timestamp: str
    label: str
    delimiter: str

    def read(self, path: Path) -> LabelledSeries:
        """Read one file."""
        if self.format == "skab":
            return read_skab(path)
        return read_csv(path, timestamp=self.timestamp, label=self.label, delimiter=self.delimiter)


def find_files(paths: tuple[Path, ...]) -> list[Path]:
    """The CSV files named or under the named directories, sorted; error when there are none."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.csv")))
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetError(str(path), "no such file or directory")
    if not files:
        raise DatasetError(", ".join(map(str, paths)), "no .csv files found")
    return files


def run(
    files: list[Path],
    reader: Reader,
    profile: ProfileSettings,
    train_rows: int,
    *,
    plot_to: Path | None,
    as_json: bool,
    console: Console,
) -> Confusion:
    """Evaluate every file, print the per-file and overall results, return the total."""
    results: list[FileResult] = []
    # The progress bar goes to stderr so that stdout holds only the results.
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("evaluating", total=len(files))
        for path in files:
            series = reader.read(path)
            result = evaluate(series, profile, train_rows)
            results.append(result)
            if plot_to is not None and len(results) == 1:
                plot(series, result, plot_to)
            progress.advance(task)
    total = sum((r.confusion for r in results), Confusion())
    if as_json:  # JSON lines: one object per file, then the overall counts
        for record in [*map(_record, results), {"file": "overall", **_counts(total)}]:
            sys.stdout.write(orjson.dumps(record).decode() + "\n")
    else:
        console.print(_table(results, total, profile.name))
    return total


def _counts(c: Confusion) -> dict[str, object]:
    return {
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
        "precision": round(c.precision, 4),
        "recall": round(c.recall, 4),
        "f1": round(c.f1, 4),
        "far": round(c.far, 2),
        "mar": round(c.mar, 2),
    }


def _record(r: FileResult) -> dict[str, object]:
    return {
        "file": r.name,
        **_counts(r.confusion),
        "delays_s": [w.delay_s for w in r.windows],
        "cut": [w.cut for w in r.windows],
    }


def _table(results: list[FileResult], total: Confusion, profile: str) -> Table:
    table = Table(
        title=f"profile {profile}: precision {total.precision:.2f}, recall {total.recall:.2f}, "
        f"F1 {total.f1:.2f}, FAR {total.far:.2f} %, MAR {total.mar:.2f} %"
    )
    columns = ("file", "TP", "FP", "FN", "TN", "prec.", "recall", "F1", "FAR %", "MAR %", "delay s")
    for column in columns:
        table.add_column(column, justify="left" if column == "file" else "right")
    for r in results:
        delays = ", ".join(_delay(w) for w in r.windows)
        table.add_row(_short(r.name), *_figures(r.confusion), delays or "-")
    table.add_section()
    table.add_row("overall", *_figures(total), "")
    return table


def _delay(w: Window) -> str:
    text = "missed" if w.delay_s is None else f"{w.delay_s:.0f}"
    return f"{text} (cut)" if w.cut else text


def _figures(c: Confusion) -> tuple[str, ...]:
    counts = (str(c.tp), str(c.fp), str(c.fn), str(c.tn))
    rates = (f"{c.precision:.2f}", f"{c.recall:.2f}", f"{c.f1:.2f}", f"{c.far:.2f}", f"{c.mar:.2f}")
    return counts + rates


def _short(name: str) -> str:
    path = Path(name)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
