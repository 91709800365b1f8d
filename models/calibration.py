"""Calibration: a detector's raw score to [0, 1], against the asset's own normal scores.

A calibrated score is the share of the asset's recent normal readings that scored lower, so
0.99 means "higher than 99 % of what this machine does when healthy", whatever the detector.
Beyond the highest normal score it keeps rising towards 1 instead of saturating, so a worse
reading always scores higher. The recent normal scores are also where the threshold comes
from, so it adapts as the asset's normal behaviour drifts.
"""

from __future__ import annotations

import bisect
import math
from collections import deque


class Calibrator:
    """Percentile of a raw score among the last `capacity` normal raw scores.

    Examples
    --------
    >>> c = Calibrator(capacity=100)
    >>> for raw in range(100):
    ...     c.update(float(raw))
    >>> c.percentile(49.5), c.percentile(99.0) < c.percentile(150.0) < 1.0
    (0.495..., True)
    >>> c.threshold(quantile=0.9, margin=1.0)
    0.891...
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def update(self, raw: float) -> None:
        """Add the raw score of a reading that was learned as normal."""
        self._recent.append(raw)
        bisect.insort(self._sorted, raw)
        if len(self._recent) > self.capacity:
            old = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def percentile(self, raw: float) -> float:
        """The calibrated score in [0, 1); 0.5 while nothing is known."""
        ranked = self._sorted
        n = len(ranked)
        if n == 0:
            return 0.5
        below = bisect.bisect_right(ranked, raw)
        if below < n:
            return below / (n + 1)
        # Past the highest normal score: an exponential tail, continuous at the maximum, whose
        # scale is the spread of the upper half of normal scores.
        top = ranked[-1]
        scale = max(top - ranked[n // 2], abs(top) * 1e-6, 1e-12)
        return 1.0 - math.exp(-(raw - top) / scale) / (n + 1)

    def threshold(self, quantile: float, margin: float) -> float:
        """The calibrated threshold: the `quantile` of normal raw scores times `margin`."""
        ranked = self._sorted
        if not ranked:
            return 1.0
        raw = ranked[min(len(ranked) - 1, int(quantile * len(ranked)))] * margin
        return self.percentile(raw - 1e-12 * abs(raw))
