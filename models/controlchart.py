"""The drift-aware EWMA control chart: the default detector, tuned on machine physics.

A Shewhart/EWMA chart per metric, as process engineers run them, made to work unattended:

* Each metric's level is smoothed (EWMA, ``lam``) and compared with its warm-up mean; its
  roughness (EWMA of |change|, ``lam_r``) with its warm-up roughness. Vibration that gets
  noisier, a pressure that drops, a temperature that creeps all show in one of the two.
* The scale of each is drift-aware and robust: the short-term spread (MAD) plus how far the
  metric wanders over ``horizon`` readings in the warm-up, so a metric that naturally
  meanders (a loop warming up) does not alarm for meandering.
* A sensor stuck at one value longer than twice its longest warm-up run is evidence too.
* A metric the others explain in the warm-up (R² of a ridge regression of its level on
  theirs at least ``explained_r2``) is judged by its residual instead of its level: on a
  machine whose load cycles, a temperature that follows the load is normal however high the
  load goes, and one that leaves it is a fault even inside the range the load explains.
* The statistic combines the two strongest metrics: sqrt(z1² + z2²).
* The threshold is the asset's own: the larger of ``c`` and ``margin`` times the highest
  statistic that a model fitted on the first part of the warm-up gives the rest of it.

The score is s² / (s² + thr²): 0.5 is the threshold on every asset, 0.8 is twice it
(`models.thresholded`).

Measured on SKAB (34 files, its protocol): F1 0.786, FAR 10.4 %, MAR 29.4 % (the best
offline entry, Conv-AE: 0.78 / 13.55 / 28.02; without residuals 0.789 / 9.8 / 29.4); on
machines with a duty cycle, a +15 % temperature drift was caught in 10 of 10 runs with
residuals and 1 of 10 without. About 5-7 µs a reading, ~2 KiB a model.
"""

from __future__ import annotations

import math
from array import array
from statistics import fmean, median, pvariance

import numpy as np

from models.base import Features
from models.thresholded import SelfThresholded
from models.warmup import MAD_TO_SD

# The median of a squared standard normal, turning a median of squares into a variance.
_MEDIAN_CHI2_1 = 0.455


def _filled(column: array[float]) -> list[float]:
    """A warm-up column with gaps filled: the last value carried on, the first carried back."""
    values = list(column)
    last = next((v for v in values if v == v), 0.0)
    for i, v in enumerate(values):
        if v == v:
            last = v
        else:
            values[i] = last
    return values


def _explain(
    levels: list[list[float]], burn: int, horizon: int, drift_weight: float, r2_min: float
) -> list[tuple[float, list[float], float] | None]:
    """Per metric, a ridge regression of its level on the others', kept when R² >= r2_min."""
    if r2_min <= 0 or len(levels) < 2:
        return [None] * len(levels)
    data = np.array(levels, dtype=float)[:, burn:]
    out: list[tuple[float, list[float], float] | None] = []
    for j in range(len(levels)):
        y, others = data[j], np.delete(data, j, axis=0)
        spread = others.std(axis=1)
        if y.std() == 0 or not spread.all():
            out.append(None)
            continue
        z = (others - others.mean(axis=1, keepdims=True)) / spread[:, None]
        # Ridge (1 % of n on standardised inputs): collinear sensors stay stable.
        beta = np.linalg.solve(z @ z.T + 0.01 * z.shape[1] * np.eye(len(z)), z @ (y - y.mean()))
        residual = y - y.mean() - beta @ z
        if 1 - residual.var() / y.var() < r2_min:
            out.append(None)
            continue
        coefficients = (beta / spread).tolist()
        intercept = float(y.mean() - (beta / spread) @ others.mean(axis=1))
        scale = _scale(residual.tolist(), 0, horizon, drift_weight, float(y.mean()))
        out.append((intercept, coefficients, scale))
    return out


def _ewma(values: list[float], lam: float) -> list[float]:
    out, level = [], values[0]
    for v in values:
        level += lam * (v - level)
        out.append(level)
    return out


def _scale(series: list[float], burn: int, horizon: int, drift_weight: float, ref: float) -> float:
    """Robust short-term spread plus the drift over `horizon` readings, as one scale."""
    w = series[burn:]
    if len(w) < 4:
        return 1e-12 + 1e-6 * abs(ref)
    mid = median(w)
    spread = (MAD_TO_SD * median([abs(v - mid) for v in w])) ** 2
    # Floors at a quarter of the classical estimates: MAD is 0 on quantised sensors.
    spread = max(spread, 0.25 * pvariance(w))
    drift = 0.0
    horizon = min(horizon, len(w) - 64)  # at least 64 pairs for a stable median
    if horizon >= 1:
        jumps = [(w[i + horizon] - w[i]) ** 2 for i in range(len(w) - horizon)]
        drift = max(median(jumps) / _MEDIAN_CHI2_1, 0.25 * fmean(jumps))
    return math.sqrt(spread + drift_weight * drift) + 1e-12 + 1e-6 * abs(ref)


class _Chart:
    """Per-metric baselines, scales and filter states fitted on warm-up rows."""

    __slots__ = (
        "explained",
        "level",
        "mean",
        "previous",
        "rough",
        "rough_mean",
        "run",
        "run_limit",
        "scale_level",
        "scale_rough",
    )

    def __init__(
        self,
        rows: list[list[float]],
        lam: float,
        lam_r: float,
        burn: int,
        horizon: int,
        drift_weight: float,
        explained_r2: float = 0.0,
    ) -> None:
        self.mean: list[float] = []
        self.rough_mean: list[float] = []
        self.scale_level: list[float] = []
        self.scale_rough: list[float] = []
        self.level: list[float] = []
        self.rough: list[float] = []
        self.previous = list(rows[-1])
        self.run_limit: list[float] = []
        self.run: list[int] = []
        # Per metric: (intercept, coefficients on the other levels, residual scale) when the
        # other metrics explain its level in the warm-up, else None.
        self.explained: list[tuple[float, list[float], float] | None] = []
        all_levels: list[list[float]] = []
        for j in range(len(rows[0])):
            column = [row[j] for row in rows]
            changes = [abs(column[i] - column[i - 1]) for i in range(1, len(column))]
            changes.insert(0, changes[0] if changes else 0.0)
            levels, roughs = _ewma(column, lam), _ewma(changes, lam_r)
            m, r = fmean(column), fmean(changes)
            self.mean.append(m)
            self.rough_mean.append(r)
            if min(column) == max(column):
                # Constant in the warm-up (a mode flag, an idle setpoint): no scale to measure
                # a change by, so its level and roughness give no evidence (stuck still can).
                self.scale_level.append(math.inf)
                self.scale_rough.append(math.inf)
            else:
                self.scale_level.append(_scale(levels, burn, horizon, drift_weight, m))
                self.scale_rough.append(
                    _scale(roughs, burn, horizon, drift_weight, max(r, 1e-6 * abs(m)))
                )
            all_levels.append(levels)
            self.level.append(levels[-1])
            self.rough.append(roughs[-1])
            run = longest = 1
            for i in range(1, len(column)):
                run = run + 1 if column[i] == column[i - 1] else 1
                longest = max(longest, run)
            self.run_limit.append(float(longest))
            self.run.append(run)
        self.explained = _explain(all_levels, burn, horizon, drift_weight, explained_r2)

    def step(
        self,
        x: list[float],
        lam: float,
        lam_r: float,
        rough_weight: float,
        stuck: tuple[float, float, float],
    ) -> tuple[float, int]:
        """Advance the filters with one reading; return (statistic, index of the top metric)."""
        stuck_mult, stuck_min, stuck_at = stuck
        level, rough, previous, run = self.level, self.rough, self.previous, self.run
        mean, rough_mean, run_limit = self.mean, self.rough_mean, self.run_limit
        scale_level, scale_rough, explained = self.scale_level, self.scale_rough, self.explained
        z1 = z2 = 0.0
        top = 0
        # Plain comparisons rather than max(): this runs per metric per reading.
        for j, v in enumerate(x):
            if v != v:  # a metric missing from this reading: hold its filters
                continue
            before = previous[j]
            lv = level[j] = level[j] + lam * (v - level[j])
            rv = rough[j] = rough[j] + lam_r * (abs(v - before) - rough[j])
            r = run[j] = run[j] + 1 if v == before else 1
            previous[j] = v
            z = abs(lv - mean[j]) / scale_level[j] if explained[j] is None else 0.0
            zr = rough_weight * abs(rv - rough_mean[j]) / scale_rough[j]
            if zr > z:
                z = zr
            if stuck_mult > 0:
                zs = 1.001 * stuck_at * r / max(stuck_mult * run_limit[j], stuck_min)
                if zs > z:
                    z = zs
            if z > z1:
                z1, z2, top = z, z1, j
            elif z > z2:
                z2 = z
        # A metric the others explain is judged by its residual: a temperature that follows
        # the load is normal however high the load; one that leaves it is not.
        residuals = []
        for j, model in enumerate(explained):
            if model is None or x[j] != x[j]:
                continue
            intercept, coefficients, scale = model
            predicted = intercept
            for k, c in enumerate(coefficients):
                predicted += c * level[k if k < j else k + 1]
            z = abs(level[j] - predicted) / scale
            residuals.append((z, j))
            if z > z1:
                z1, z2, top = z, z1, j
            elif z > z2:
                z2 = z
        if residuals and any(j == top for _, j in residuals):
            # A decoupled pair shows in both residuals (each predicts the other): blame the
            # one of the near-equal residuals whose own level moved furthest from normal.
            best = max(residuals)[0]
            near = [j for z, j in residuals if z >= 0.8 * best]
            top = max(near, key=lambda j: abs(level[j] - mean[j]) / self._level_spread(j))
        return math.sqrt(z1 * z1 + z2 * z2), top

    def _level_spread(self, j: int) -> float:
        scale = self.scale_level[j]
        return scale if math.isfinite(scale) else 1e-12 + abs(self.mean[j])


class ControlChart(SelfThresholded):
    """Drift-aware EWMA control chart with its own per-asset threshold (see the module).

    Learns from the first `warmup` readings (buffered, then fitted once), then scores each
    reading in [0, 1) with 0.5 at the asset's threshold. `score_one` advances the chart's
    filters, so it is called exactly once per reading, in time order. After warm-up the
    baselines stay fixed unless `adapt` > 0 (they then follow readings scored under
    `guard` x the threshold; on SKAB any adaptation cost F1, as slow faults were learned).

    Parameters
    ----------
    warmup
        Readings fitted before any score.
    lam, lam_r
        EWMA rates of the level and roughness filters.
    horizon, drift_weight
        Readings over which natural wander is measured, and its weight in the scale.
    rough_weight
        Weight of roughness evidence (0 turns it off).
    c, margin, split
        Threshold: max(c, margin x the highest statistic of warm-up rows split.. under a
        chart fitted on rows ..split).
    adapt, guard
        Optional slow adaptation of the baselines after warm-up.
    burn
        First warm-up rows left out of the scales (filter start-up).
    stuck_mult, stuck_min
        A run of identical values longer than max(stuck_mult x the longest warm-up run,
        stuck_min) crosses the threshold on its own.
    explained_r2
        How well the other metrics must explain a metric's level in the warm-up for it to
        be judged by its residual (0 turns residuals off).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> chart = ControlChart(warmup=200, split=150)
    >>> for _ in range(200):
    ...     chart.learn_one({"temp": 60 + rng.gauss(0, 1), "current": 10 + rng.gauss(0, 0.1)})
    >>> def reading(temp):
    ...     return {"temp": temp + rng.gauss(0, 1), "current": 10 + rng.gauss(0, 0.1)}
    >>> max(chart.score_one(reading(60)) for _ in range(50)) < 0.5
    True
    >>> hot = [chart.score_one(reading(70)) for _ in range(20)]
    >>> hot[-1] > 0.9, chart.top_metric
    (True, 'temp')
    >>> stuck = [chart.score_one({"temp": 60 + rng.gauss(0, 1), "current": 10.0})
    ...          for _ in range(40)]
    >>> stuck[-1] > 0.5, chart.top_metric
    (True, 'current')
    """

    def __init__(
        self,
        warmup: int = 400,
        lam: float = 0.1,
        lam_r: float = 0.1,
        horizon: int = 200,
        drift_weight: float = 1.0,
        rough_weight: float = 1.0,
        c: float = 5.0,
        margin: float = 1.25,
        split: int = 300,
        adapt: float = 0.0,
        guard: float = 0.2,
        burn: int = 30,
        stuck_mult: float = 2.0,
        stuck_min: float = 10.0,
        explained_r2: float = 0.95,
    ) -> None:
        if not 0 < split < warmup:
            raise ValueError(f"split must be between 0 and warmup ({warmup}), got {split}")
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        super().__init__(warmup, c, margin, guard, stuck_mult, stuck_min)
        self.lam = lam
        self.lam_r = lam_r
        self.horizon = horizon
        self.drift_weight = drift_weight
        self.rough_weight = rough_weight
        self.split = split
        self.adapt = adapt
        self.burn = burn
        self.explained_r2 = explained_r2
        # Warm-up readings by metric, NaN where a reading lacked it; freed after the fit.
        self._columns: dict[str, array[float]] | None = {}
        self.chart: _Chart | None = None

    @property
    def ready(self) -> bool:
        """True once the warm-up is fitted and scores count."""
        return self.chart is not None

    def _vector(self, x: Features) -> list[float]:
        get, nan = x.get, math.nan
        return [get(name, nan) for name in self.names]

    def _keep(self, x: Features) -> None:
        """Keep a warm-up reading; a metric first seen now is NaN in the earlier rows."""
        assert self._columns is not None
        columns, before = self._columns, self.seen - 1
        for name, value in x.items():
            column = columns.get(str(name))
            if column is None:
                column = columns[str(name)] = array("d", [math.nan] * before)
            column.append(value)
        for column in columns.values():
            if len(column) < self.seen:
                column.append(math.nan)

    def _fit(self) -> None:
        assert self._columns is not None
        # The metrics seen in the warm-up are the chart's; one first sent later is not
        # modelled (it has no baseline) until the asset's model is rebuilt.
        self.names = sorted(self._columns)
        columns = [_filled(self._columns[name]) for name in self.names]
        self._columns = None
        if not columns:  # nothing to model: a chart that never finds evidence
            self.chart = _Chart([[0.0]] * self.warmup, 1.0, 1.0, 0, 1, 0.0)
            return
        rows = [list(row) for row in zip(*columns, strict=True)]
        fit = (self.lam, self.lam_r, self.burn, self.horizon, self.drift_weight, self.explained_r2)
        calibration = _Chart(rows[: self.split], *fit)
        highest = max(
            calibration.step(row, self.lam, self.lam_r, self.rough_weight, (0, 0, 0))[0]
            for row in rows[self.split :]
        )
        self.threshold = max(self.c, self.margin * highest)
        self.chart = _Chart(rows, *fit)

    def _learn_scored(self, x: Features) -> None:
        """Adapt the baselines when asked to."""
        assert self.chart is not None
        if self.adapt > 0 and self.last_score < self.guard * 0.5:
            for j, v in enumerate(self._vector(x)):
                if v == v:
                    self.chart.mean[j] += self.adapt * (v - self.chart.mean[j])

    def _statistic(self, x: Features) -> tuple[float, int]:
        assert self.chart is not None
        return self.chart.step(
            self._vector(x),
            self.lam,
            self.lam_r,
            self.rough_weight,
            (self.stuck_mult, self.stuck_min, self.threshold),
        )
