"""A picture of one evaluated file: metrics, score, threshold, labels and detections.

Needs matplotlib (the ``plot`` extra); the pipeline itself does not.
"""

from __future__ import annotations

from pathlib import Path

from models.datasets import LabelledSeries
from models.errors import ModelError
from models.evaluation import FileResult, windows


def plot(series: LabelledSeries, result: FileResult, out: Path) -> None:
    """Draw the file's metrics (scaled), score and threshold, labelled windows and flags."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ModelError("--plot needs matplotlib: pip install 'meshwatch[plot]'") from None
    seconds = [(t - series.timestamps[0]) / 1e9 for t in series.timestamps]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 6), height_ratios=(3, 2))
    for name in series.rows[0]:
        values = [row.get(name, float("nan")) for row in series.rows]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        top.plot(seconds, [(v - low) / span for v in values], lw=0.7, label=name)
    top.set_ylabel("metrics (min-max scaled)")
    top.legend(loc="upper left", fontsize=7, ncol=4)
    bottom.plot(seconds, [v.score for v in result.verdicts], lw=0.7, label="score")
    bottom.plot(seconds, [v.threshold for v in result.verdicts], lw=0.9, label="threshold")
    flagged = [s for s, v in zip(seconds, result.verdicts, strict=True) if v.anomalous]
    bottom.scatter(flagged, [1.02] * len(flagged), s=3, c="red", label="flagged")
    for axis in (top, bottom):
        for first, last in windows(series.labels):
            axis.axvspan(seconds[first], seconds[last], color="orange", alpha=0.2)
        axis.axvline(seconds[min(result.train_rows, len(seconds) - 1)], color="grey", ls="--")
    bottom.set_ylim(0, 1.05)
    bottom.set_xlabel("seconds (orange: labelled anomaly, dashed: end of warm-up)")
    bottom.legend(loc="lower left", fontsize=7)
    name = Path(series.name).name
    c = result.confusion
    fig.suptitle(f"{name}: F1 {c.f1:.2f}, FAR {c.far:.1f} %, MAR {c.mar:.1f} %")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
