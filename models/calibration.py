"""Calibration: any river detector's raw score to [0, 1] with 0.5 at the asset's threshold.

River detectors score on their own scales (HalfSpaceTrees in [0, 1], OneClassSVM around 0,
Mahalanobis distances unbounded). `Calibrated` learns, over the last quarter of the warm-up,
how the detector scores this asset's normal readings (each scored before it is learned, so
out of sample), sets the threshold at ``quantile`` of those scores times ``margin``, and from
then on maps raw scores through a logistic curve that puts the warm-up median at 0.1 and the
threshold at 0.5. A score means the same on every asset and every detector: 0.5 is "at this
asset's threshold". The threshold stays fixed after warm-up: letting it follow the scores
would let a slow fault raise its own bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import median
from typing import Any

from river import base

from models.base import Features

# The warm-up median maps to 0.1: logit(0.1) = -ln 9.
_LN9 = math.log(9.0)


class Calibrated(base.AnomalyDetector):
    """Wraps a river detector so that its score is in [0, 1) with 0.5 at the threshold.

    Parameters
    ----------
    detector
        Any river anomaly detector (higher score, more anomalous).
    warmup
        Readings learned before scores count; the threshold is set at its end.
    quantile, margin
        Threshold: the `quantile` of the warm-up tail's scores, times `margin`.

    Examples
    --------
    >>> import random
    >>> from models.detectors import ZScore
    >>> rng = random.Random(2)
    >>> model = Calibrated(ZScore(), warmup=200, quantile=0.99, margin=1.2)
    >>> for _ in range(200):
    ...     x = {"temp": rng.gauss(60, 1)}
    ...     _ = model.score_one(x)
    ...     model.learn_one(x)
    >>> model.score_one({"temp": 60.0}) < 0.2, model.score_one({"temp": 70.0}) > 0.8
    (True, True)
    """

    def __init__(self, detector: Any, warmup: int, quantile: float, margin: float) -> None:
        self.detector = detector
        self.warmup = warmup
        self.quantile = quantile
        self.margin = margin
        self.learned = 0
        self.threshold: float | None = None
        self._center = 0.0
        self._scale = 1.0
        self._tail: list[float] = []

    @property
    def ready(self) -> bool:
        """True once the threshold is set and scores count."""
        return self.threshold is not None

    @property
    def top_metric(self) -> str:
        """'': a river detector does not say which metric drove its score."""
        return ""

    def learn_one(self, x: Features) -> None:
        """Teach the detector; at the end of the warm-up, fix the threshold."""
        self.detector.learn_one(x)
        self.learned += 1
        if self.learned < self.warmup:
            return
        # Scores before a detector's first change (HalfSpaceTrees scores 0 until its first
        # window fills) say nothing about this asset: calibrate on a quarter warm-up of
        # scores after it, waiting past the warm-up when needed.
        tail = self._tail
        start = next((i for i, raw in enumerate(tail) if raw != tail[0]), len(tail))
        start = 0 if start < 2 else start  # only a repeated value marks a detector not ready
        if len(tail) - start >= max(10, self.warmup // 4):
            ranked = sorted(tail[start:])
            raw = ranked[min(len(ranked) - 1, int(self.quantile * len(ranked)))]
            threshold = raw * self.margin if raw > 0 else raw / self.margin
            mid = median(ranked)
            self.threshold = threshold
            self._scale = (threshold - mid) / _LN9 if threshold > mid else abs(threshold) * 0.1
            self._scale = max(self._scale, 1e-12)
            self._tail = []

    def score_one(self, x: Features) -> float:
        """The calibrated score; 0 during warm-up."""
        raw = float(self.detector.score_one(x))
        if self.threshold is None:
            if self.learned >= self.warmup * 3 // 4:
                self._tail.append(raw)
                del self._tail[: -self.warmup]  # bounded while a threshold is awaited
            return 0.0
        z = (raw - self.threshold) / self._scale
        if z <= 0:
            return 1.0 / (1.0 + math.exp(min(700.0, -z)))
        # Above the threshold a rational tail (same slope at 0.5) keeps gross outliers apart
        # and below 1, where the logistic would round to 1.0 beyond ~37 scales.
        return 1.0 - 0.5 / (1.0 + z / 2.0)

    def learn_normal(self, rows: Sequence[Features]) -> None:
        """Learn readings called normal one by one, as `learn_one` would."""
        for x in rows:
            self.learn_one(x)
