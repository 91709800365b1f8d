"""Dynamic relations between an asset's metrics, learned online: what each metric follows.

For every ordered pair of metrics (j, k) a least-squares fit of j's smoothed level on k's
level and rate and j's own rate, ``L_j ~ 1 + L_k + R_k + R_j``: an instantaneous relation
(vibration follows motor current), or a first-order lag either way (a temperature
``T + tau * dT/dt`` follows the load; a ten-minute average of the load is read by its
change). All pairs share one exponentially forgetting Gram matrix of ``[1, L, R]``, so
learning is one outer product a reading and each fit a 4x4 solve at refresh time.

A metric is judged by its tightest relation, and only once that relation is established:
R² of at least ``r2_min`` over data in which both metrics really moved (their variance at
least ``signal_min`` times their smoothed noise, squared); once in use, it holds until its
R² falls 0.05 below ``r2_min``, so an explanation does not flicker away and back (a
compressor's oil temperature, explained by the hour's duty at R² about 0.9 in the afternoon,
was flagged each time a refit came out just under it). Then a load it has not seen yet
is no anomaly as long as the relation holds, and a broken relation is one even when every
level is inside its normal range.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]

#: How far below ``r2_min`` a metric's relation in use may fall before it is dropped.
_HOLD = 0.05


class Relations:
    """Pairwise dynamic relations over ``d`` metrics.

    Parameters
    ----------
    d
        Number of metrics.
    horizon
        Readings the relations remember (exponential forgetting).
    r2_min, signal_min
        When a relation is established (see the module).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(4)
    >>> rel = Relations(2)
    >>> sl = np.array([0.05, 0.05])
    >>> for i in range(600):
    ...     load = (i // 100) % 3
    ...     current = 2.0 + 5.0 * load + rng.gauss(0, 0.05)
    ...     rel.learn(np.array([1.0, current, 0.3 * current + rng.gauss(0, 0.05), 0.0, 0.0]))
    >>> rel.refresh(sl)
    >>> def z(level):
    ...     return rel.zscores(level, [0.0, 0.0], rel.spreads(level, [0.0, 0.0])[0])
    >>> z([12.0, 3.6])[1] < 3     # a load never seen, the same relation
    True
    >>> z([12.0, 5.0])[1] > 10    # metric 1 left its relation
    True
    """

    def __init__(
        self, d: int, horizon: float = 20_000, r2_min: float = 0.9, signal_min: float = 10.0
    ) -> None:
        self.d = d
        self.forget = 1.0 - 1.0 / horizon
        self.r2_min = r2_min
        self.signal_min = signal_min
        self.gram: Vector = np.zeros((1 + 2 * d, 1 + 2 * d))
        pairs = [(j, k) for j in range(d) for k in range(d) if j != k]
        self.pairs = np.array(pairs, dtype=np.intp).reshape(-1, 2)
        self.columns = np.array(
            [[0, 1 + k, 1 + d + k, 1 + d + j] for j, k in pairs], dtype=np.intp
        ).reshape(-1, 4)
        # Per metric: its tightest established relation as (the other metric, coefficients of
        # [1, L_k, R_k, R_j], inverse Gram for the prediction's uncertainty, residual
        # variance); None when there is none.
        self.best: list[tuple[int, list[float], list[list[float]], float] | None] = [None] * d

    def learn(self, phi: Vector, weight: float = 1.0) -> None:
        """Add an accepted reading's features ``[1, L (d), R (d)]``, `weight` times."""
        self.gram *= self.forget**weight
        self.gram += weight * np.multiply.outer(phi, phi)  # np.outer without its wrapper

    def refresh(self, sl: Vector) -> None:
        """Refit every pair and choose each metric's tightest established relation.

        `sl` is each metric's smoothed noise, the unit of "really moved".
        """
        gram, pairs, cols = self.gram, self.pairs, self.columns
        n = gram[0, 0]
        if n < 2 or not len(pairs):
            return
        a = gram[cols[:, :, None], cols[:, None, :]]
        ridge = 1e-9 * np.einsum("pii->pi", a) + 1e-12
        a = a + np.eye(4)[None] * ridge[:, :, None]
        targets = 1 + pairs[:, 0]
        gy = gram[cols, targets[:, None]]
        try:
            inverse = np.linalg.inv(a)
        except np.linalg.LinAlgError:  # degenerate data: keep the relations as they were
            return
        beta = np.einsum("pij,pj->pi", inverse, gy)
        yy = gram[targets, targets]
        mean = gram[0] / n
        var = np.maximum(np.diag(gram) / n - mean**2, 0.0)
        sst = yy - n * mean[targets] ** 2
        sse = np.maximum(yy - (beta * gy).sum(axis=1), 0.0)
        r2 = 1.0 - sse / np.maximum(sst, 1e-300)
        moved_y = var[targets] >= (self.signal_min * sl[pairs[:, 0]]) ** 2
        moved_x = var[1 + pairs[:, 1]] >= (self.signal_min * sl[pairs[:, 1]]) ** 2
        # a relation in use holds until its fit is clearly worse (hysteresis): one that
        # flickers around r2_min would take its explanation away and give it back
        in_use = np.array([-1 if b is None else b[0] for b in self.best])
        held = pairs[:, 1] == in_use[pairs[:, 0]]
        floor = np.where(held, self.r2_min - _HOLD, self.r2_min)
        established = (r2 >= floor) & moved_y & moved_x
        residual = np.maximum(sse / n, (0.5 * sl[pairs[:, 0]]) ** 2)
        tightness = np.where(established, 1.0 - r2, np.inf)
        best: list[tuple[int, list[float], list[list[float]], float] | None] = []
        for j in range(self.d):
            rows = np.flatnonzero(pairs[:, 0] == j)
            p = rows[int(tightness[rows].argmin())]
            best.append(
                (int(pairs[p, 1]), beta[p].tolist(), inverse[p].tolist(), float(residual[p]))
                if math.isfinite(tightness[p])
                else None
            )
        self.best = best

    def spreads(
        self, level: list[float], rate: list[float]
    ) -> tuple[list[float | None], list[float]]:
        """Each metric's prediction variance and leverage at (`level`, `rate`).

        The variance is the residual's plus the fit's own uncertainty (None where no relation
        is established); the leverage says how far outside its experience the relation is
        asked to predict, in readings' worth: about 4 (its coefficients) at the centre of the
        points it was fitted on, growing with the distance from them (infinity: no relation).
        """
        spreads: list[float | None] = []
        leverages: list[float] = []
        for j, relation in enumerate(self.best):
            if relation is None:
                spreads.append(None)
                leverages.append(math.inf)
                continue
            k, _, inverse, residual = relation
            f = (1.0, level[k], rate[k], rate[j])
            quadratic = sum(
                f[a] * sum(row[b] * f[b] for b in range(4)) for a, row in enumerate(inverse)
            )
            spreads.append(residual * (1.0 + quadratic))
            leverages.append(quadratic * self.gram[0, 0])
        return spreads, leverages

    def partner(self, j: int) -> int:
        """The metric metric `j`'s tightest relation follows (-1 when it has none)."""
        relation = self.best[j]
        return -1 if relation is None else relation[0]

    def zscores(
        self, level: list[float], rate: list[float], spreads: list[float | None]
    ) -> list[float]:
        """Each metric's distance from its tightest relation, in prediction deviations.

        `spreads` are the prediction variances (from `spreads`); infinity where no relation
        is established.
        """
        out = [math.inf] * self.d
        for j, relation in enumerate(self.best):
            spread = spreads[j] if j < len(spreads) else None
            if relation is None or spread is None:
                continue
            k, (b0, b1, b2, b3), _, _ = relation
            predicted = b0 + b1 * level[k] + b2 * rate[k] + b3 * rate[j]
            out[j] = abs(level[j] - predicted) / math.sqrt(spread)
        return out

    @property
    def established(self) -> int:
        """How many metrics have an established relation."""
        return sum(r is not None for r in self.best)
