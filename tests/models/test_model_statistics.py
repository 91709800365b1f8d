"""Unit tests of the per-asset statistics' fast paths: the same numbers as the plain ones.

The warm-up's runs and wander, and the state memory of a machine in one state, have
shortcuts (issue 14): each is checked bit for bit against the straightforward computation.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.memory import StateMemory
from models.warmup import longest_runs, wander


def _samples(seed: int) -> list[np.ndarray]:
    """Warm-ups of every shape: noise, quantised values (runs), plateaus, one row."""
    rng = np.random.default_rng(seed)
    out = [np.array([[1.0, 2.0]]), np.zeros((5, 3))]
    for n, d in ((2, 1), (40, 4), (400, 4), (400, 8), (150, 11)):
        out.append(rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-3, 3, size=d))
        out.append(np.round(rng.normal(size=(n, d)), 0))
        out.append(np.repeat(rng.normal(size=(n // 7 + 1, d)), 7, axis=0)[:n])
    return out


def _runs_by_loop(x: np.ndarray) -> np.ndarray:
    run = np.ones(x.shape[1])
    longest = run.copy()
    for i in range(1, len(x)):
        run = np.where(x[i] == x[i - 1], run + 1, 1)
        longest = np.maximum(longest, run)
    return longest


def _ewma_by_rows(x: np.ndarray, lam: float) -> np.ndarray:
    level = np.empty_like(x)
    current = x[0].copy()
    for i, row in enumerate(x):
        current += lam * (row - current)
        level[i] = current
    return level


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_longest_runs_are_those_counted_row_by_row(seed: int) -> None:
    for x in _samples(seed):
        got = longest_runs(x)
        assert got.dtype == np.float64
        assert np.array_equal(got, _runs_by_loop(x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wander_smooths_exactly_as_numpy_row_by_row(seed: int) -> None:
    """The EWMA in plain floats gives the same doubles as numpy's, so the same wander."""
    for x in _samples(seed):
        for lam, horizon in ((0.1, 5), (0.02, 20), (1.0, 1)):
            step = np.abs(x).max(axis=0) * 0.1 + 1e-9
            got = wander(x, lam, horizon, step)
            level = _ewma_by_rows(x, lam)
            if len(x) <= 30 + 2 * horizon:
                assert np.array_equal(got, np.zeros(x.shape[1]))
                continue
            jumps = level[30 + horizon :] - level[30:-horizon]
            changed = (np.abs(jumps) > step).sum(axis=1) >= 2
            window = np.convolve(changed.astype(float), np.ones(61), mode="full")
            quiet = ~(window[30 : 30 + len(changed)] > 0)
            expected = (
                1.4826 * np.median(np.abs(jumps[quiet] - np.median(jumps[quiet], axis=0)), axis=0)
                if quiet.any()
                else np.zeros(x.shape[1])
            )
            assert np.array_equal(got, expected)


@pytest.mark.parametrize("d", [1, 2, 4, 9, 16])
def test_one_state_answers_as_the_general_case_does(d: int) -> None:
    """One state is the nearest by any metric: as for two copies of it, ties to the first."""
    rng = np.random.default_rng(d)
    for _ in range(50):
        state = rng.normal(size=d) * 10.0 ** rng.uniform(-2, 3, size=d)
        level = state + rng.normal(size=d) * 5
        sl = np.abs(rng.normal(size=d)) + 0.01
        one, two = StateMemory(), StateMemory()
        one.levels, one.noise, one.counts = state[None, :].copy(), np.ones((1, d)), np.ones(1)
        two.levels, two.noise, two.counts = np.vstack([state, state]), np.ones((2, d)), np.ones(2)
        assert one.nearest(level, sl) == two.nearest(level, sl) == 0
        for got, general in zip(one.expected(level, sl), two.expected(level, sl), strict=True):
            assert np.array_equal(got, general)
