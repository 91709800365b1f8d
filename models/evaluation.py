"""Evaluation on labelled data with the live pipeline's own asset model.

Follows the SKAB protocol: per file the first ``train_rows`` rows are learned (the model's
warm-up) and the rest is the test; every test row gets a 0/1 prediction; confusion counts
are summed over files. precision = TP / (TP + FP), recall = TP / (TP + FN),
F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP).
The detection delay of a labelled anomaly window is the time from its first row to the
first row flagged inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from models.asset import AssetModel
from models.base import Verdict
from models.datasets import LabelledSeries
from models.settings import ProfileSettings


@dataclass(slots=True)
class Confusion:
    """Point-wise confusion counts.

    Examples
    --------
    >>> c = Confusion.of(labels=[0, 0, 1, 1, 1], predictions=[0, 1, 0, 1, 1])
    >>> (c.tp, c.fp, c.fn, c.tn), round(c.precision, 3), round(c.recall, 3)
    ((2, 1, 1, 1), 0.667, 0.667)
    >>> round(c.f1, 3), round(c.far, 1), round(c.mar, 1)
    (0.667, 50.0, 33.3)
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @classmethod
    def of(cls, labels: list[int], predictions: list[int]) -> Confusion:
        """Count a file's rows."""
        c = cls()
        for label, predicted in zip(labels, predictions, strict=True):
            if label and predicted:
                c.tp += 1
            elif predicted:
                c.fp += 1
            elif label:
                c.fn += 1
            else:
                c.tn += 1
        return c

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def precision(self) -> float:
        """Share of flagged rows that are anomalous (0 when nothing was flagged)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Share of anomalous rows that were flagged (100 % - MAR)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """F1 as SKAB computes it (0 when there is nothing to find or flag)."""
        denominator = self.tp + (self.fp + self.fn) / 2
        return self.tp / denominator if denominator else 0.0

    @property
    def far(self) -> float:
        """False alarm rate, percent of normal rows flagged."""
        return 100 * self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        """Missed alarm rate, percent of anomalous rows not flagged."""
        return 100 * self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """A labelled anomaly window of the test part and how soon it was detected."""

    start_ns: int
    end_ns: int
    delay_s: float | None
    #: The window began in the training part: the delay counts from the test part's start.
    cut: bool = False


@dataclass(slots=True)
class FileResult:
    """One file's evaluation: counts, windows, and every verdict (for plots)."""

    name: str
    confusion: Confusion
    windows: list[Window]
    train_rows: int
    verdicts: list[Verdict] = field(repr=False, default_factory=list)


def windows(labels: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) row index of each run of 1s.

    Examples
    --------
    >>> list(windows([0, 1, 1, 0, 1]))
    [(1, 2), (4, 4)]
    """
    start = None
    for i, label in enumerate(labels):
        if label and start is None:
            start = i
        elif not label and start is not None:
            yield start, i - 1
            start = None
    if start is not None:
        yield start, len(labels) - 1


def evaluate(series: LabelledSeries, profile: ProfileSettings, train_rows: int) -> FileResult:
    """Run a fresh asset model over the file and score its test part."""
    model = AssetModel(profile)
    verdicts = [
        model.process(ts, row) for ts, row in zip(series.timestamps, series.rows, strict=True)
    ]
    labels = series.labels[train_rows:]
    predictions = [int(v.anomalous) for v in verdicts[train_rows:]]
    times = series.timestamps[train_rows:]
    found = []
    for first, last in windows(labels):
        hit = next((i for i in range(first, last + 1) if predictions[i]), None)
        delay = None if hit is None else (times[hit] - times[first]) / 1e9
        cut = (
            first == 0
            and 0 < train_rows <= len(series.labels)
            and bool(series.labels[train_rows - 1])
        )
        found.append(Window(times[first], times[last], delay, cut))
    return FileResult(series.name, Confusion.of(labels, predictions), found, train_rows, verdicts)
