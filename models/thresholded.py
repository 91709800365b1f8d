"""Detectors with their own per-asset threshold, fitted on a warm-up: what they share.

The control chart (`models.controlchart`) and the operating-state model
(`models.operating`) keep the first ``warmup`` readings, fit on them once (baselines, scales,
and the asset's threshold ``thr``, at least ``c``), then turn each reading's statistic ``s``
into the score s² / (s² + thr²): 0.5 at the threshold on every asset, 0.8 at twice it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from river import base

from models.base import Features


class SelfThresholded(base.AnomalyDetector):
    """The warm-up, scoring and learning steps of a detector with its own threshold.

    A subclass says whether it is fitted (`ready`), how it keeps a warm-up reading
    (`_keep`), fits (`_fit`), computes a reading's statistic (`_statistic`) and learns from
    a reading after the warm-up (`_learn_scored`). `score_one` advances its filters, so it
    is called exactly once per reading, in time order, before `learn_one`.

    Parameters
    ----------
    warmup
        Readings fitted before any score.
    c, margin
        The threshold's floor (the threshold until the fit), and the subclass's margin over
        the warm-up's statistics.
    guard
        What a reading must score under to be learned (as the subclass reads it).
    stuck_mult, stuck_min
        A run of identical values longer than max(stuck_mult x the longest warm-up run,
        stuck_min) crosses the threshold on its own.
    """

    def __init__(
        self,
        warmup: int,
        c: float,
        margin: float,
        guard: float,
        stuck_mult: float,
        stuck_min: float,
    ) -> None:
        self.warmup = warmup
        self.c, self.margin, self.guard = c, margin, guard
        self.stuck_mult, self.stuck_min = stuck_mult, stuck_min
        self.names: list[str] = []
        self.seen = 0
        self.threshold = c
        self.last_score = 0.0
        self.top_metric = ""

    @property
    def ready(self) -> bool:
        """True once the warm-up is fitted and scores count."""
        raise NotImplementedError

    def _keep(self, x: Features) -> None:
        """Keep a warm-up reading for the fit."""
        raise NotImplementedError

    def _fit(self) -> None:
        """Fit the baselines, scales and threshold on the warm-up kept."""
        raise NotImplementedError

    def _statistic(self, x: Features) -> tuple[float, int]:
        """Advance the filters with a reading; return its statistic and the top metric's index."""
        raise NotImplementedError

    def _learn_scored(self, x: Features) -> None:
        """Learn from a reading after the warm-up (`last_score` is its score)."""
        raise NotImplementedError

    def learn_one(self, x: Features) -> None:
        """Keep a warm-up reading (fitting at the end), or learn from a reading scored."""
        self.seen += 1
        if not self.ready:
            self._keep(x)
            if self.seen >= self.warmup:
                self._fit()
        else:
            self._learn_scored(x)

    def score_one(self, x: Features) -> float:
        """The calibrated score in [0, 1): 0.5 is the threshold; 0 during warm-up."""
        if not self.ready:
            return 0.0
        s, top = self._statistic(x)
        self.top_metric = self.names[top]
        # s²/(s²+thr²) as 1/(1+(thr/s)²): below 1 for any finite s.
        ratio = self.threshold / s if s > 0 else math.inf
        self.last_score = 1.0 / (1.0 + ratio * ratio) if ratio < 1e150 else 0.0
        return self.last_score

    def learn_normal(self, rows: Sequence[Features]) -> None:
        """Learn readings called normal one by one, as `learn_one` would."""
        for x in rows:
            self.learn_one(x)


def combine(evidence: list[float]) -> tuple[float, int]:
    """The statistic, sqrt(z1² + z2²) of the two strongest metrics, and the strongest.

    Examples
    --------
    >>> combine([3.0, 0.5, 4.0])
    (5.0, 2)
    """
    first = second = 0.0
    top = 0
    for j, e in enumerate(evidence):
        if e > first:
            first, second, top = e, first, j
        elif e > second:
            second = e
    return math.hypot(first, second), top
