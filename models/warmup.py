"""Statistics of a warm-up, per metric: gaps filled, robust spread, wander and runs.

The operating-state model (`models.operating`) fits its scales on them; the control chart
(`models.controlchart`) shares the MAD's constant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.base import Features
from models.memory import Vector

# A metric's scale is at least this share of its largest magnitude (sensors without noise in
# the warm-up, quantised or off: rpm 0 while idle).
FLOOR = 1e-2
# MAD to standard deviation for normal data.
MAD_TO_SD = 1.4826


def filled(rows: Sequence[Features], names: list[str]) -> Vector:
    """Rows as a matrix in `names` order; a gap holds the last value (the first: the next)."""
    x = np.array([[row.get(n, math.nan) for n in names] for row in rows], dtype=float)
    for j in range(x.shape[1]):
        column = x[:, j]
        seen = ~np.isnan(column)
        if not seen.any():
            column[:] = 0.0
            continue
        index = np.where(seen, np.arange(len(column)), 0)
        np.maximum.accumulate(index, out=index)
        first = int(np.argmax(seen))
        column[:] = column[index]
        column[:first] = column[first]
    return x


def mad(values: Vector) -> Vector:
    """Median absolute deviation from the median, per column."""
    return np.median(np.abs(values - np.median(values, axis=0)), axis=0)


def wander(x: Vector, lam: float, horizon: int, step: Vector) -> Vector:
    """How far a smoothed level wanders over `horizon` readings, within a state.

    Windows in which two or more metrics moved more than `step` (a change of state in the
    warm-up), and those within 30 readings of one, are left out; the rest give a robust
    spread (MAD) of the moves.
    """
    if len(x) <= 30 + 2 * horizon:
        return np.zeros(x.shape[1])
    # The EWMA of each column in plain floats: numpy calls on each row cost ~2 µs a row.
    level = np.empty_like(x)
    for j, column in enumerate(x.T.tolist()):
        current = column[0]
        smoothed = []
        for value in column:
            current += lam * (value - current)
            smoothed.append(current)
        level[:, j] = smoothed
    jumps = level[30 + horizon :] - level[30:-horizon]
    changed = (np.abs(jumps) > step).sum(axis=1) >= 2
    # also leave out the windows near one: the smoothed level is still on its way there
    near = np.convolve(changed.astype(float), np.ones(61), mode="full")[30 : 30 + len(changed)] > 0
    quiet = ~near
    if not quiet.any():
        return np.zeros(x.shape[1])
    return MAD_TO_SD * mad(jumps[quiet])


def longest_runs(x: Vector) -> Vector:
    """Per column, the longest run of identical consecutive values."""
    rows = np.arange(len(x))[:, None]
    # A run starts at the first row and wherever a value differs from the one before.
    starts = np.ones(x.shape, dtype=bool)
    starts[1:] = x[1:] != x[:-1]
    start = np.maximum.accumulate(np.where(starts, rows, 0), axis=0)
    longest: Vector = (rows - start + 1).max(axis=0, initial=1).astype(float)
    return longest
