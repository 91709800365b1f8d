"""Unit tests of `models.calibration.Calibrated`: raw scores to [0, 1) with 0.5 at the threshold.

A stub detector whose raw score is the reading's ``raw`` value (and which learns nothing)
makes the warm-up scores, and so the threshold, exact.
"""

from __future__ import annotations

import itertools
import random

import pytest
from river import base

from models.calibration import Calibrated

WARMUP = 400
# The threshold is calibrated on the scores of the last quarter of the warm-up.
TAIL = WARMUP // 4


class RawScore(base.AnomalyDetector):
    """Scores a reading as its ``raw`` value; learns nothing."""

    def learn_one(self, x: dict) -> None:
        pass

    def score_one(self, x: dict) -> float:
        return float(x["raw"])


def calibrated(tail: list[float], *, quantile: float = 0.99, margin: float = 1.0) -> Calibrated:
    """A calibrator whose warm-up ends with the raw scores `tail` (huge ones before them)."""
    model = Calibrated(RawScore(), WARMUP, quantile, margin)
    raws = [1e9] * (WARMUP - len(tail)) + tail
    for raw in raws:
        model.score_one({"raw": raw})
        model.learn_one({"raw": raw})
    return model


def score(model: Calibrated, raw: float) -> float:
    return model.score_one({"raw": raw})


def _shuffled_tail(low: float = 0.0) -> list[float]:
    tail = [low + i for i in range(TAIL)]
    random.Random(3).shuffle(tail)
    return tail


def test_scores_zero_during_warm_up() -> None:
    """Before the warm-up ends every reading scores 0, whatever its raw score."""
    model = Calibrated(RawScore(), WARMUP, 0.99, 1.0)
    scores = []
    for raw in [0.0, 5.0, 1e12] * 10:
        scores.append(score(model, raw))
        model.learn_one({"raw": raw})
    assert scores == [0.0] * 30


@pytest.mark.parametrize(
    ("quantile", "margin"),
    [(0.9, 1.0), (0.99, 1.0), (0.9, 1.5), (0.95, 3.0)],
    ids=["q0.9", "q0.99", "q0.9-margin1.5", "q0.95-margin3"],
)
def test_threshold_is_quantile_of_warm_up_scores_times_margin(
    quantile: float, margin: float
) -> None:
    """A raw score at the tail's quantile times margin scores 0.5; above it more, below less."""
    model = calibrated(_shuffled_tail(), quantile=quantile, margin=margin)
    at = sorted(_shuffled_tail())[int(quantile * TAIL)] * margin
    assert score(model, at) == pytest.approx(0.5)
    assert score(model, at * 1.001) > 0.5 > score(model, at * 0.999)


def test_only_last_quarter_of_warm_up_sets_threshold() -> None:
    """Scores from the first three quarters of the warm-up (a model still learning) are ignored."""
    model = calibrated(_shuffled_tail())
    assert score(model, 99.0) == pytest.approx(0.5)


def test_margin_raises_threshold_for_negative_raw_scores() -> None:
    """With raw scores below 0 (one_class_svm's), a margin above 1 still makes it more lenient."""
    strict = calibrated(_shuffled_tail(low=-200.0), margin=1.0)
    lenient = calibrated(_shuffled_tail(low=-200.0), margin=2.0)
    top = -200.0 + TAIL - 1
    assert score(strict, top) == pytest.approx(0.5)
    assert score(lenient, top) < 0.5


def test_warm_up_median_scores_one_tenth() -> None:
    """A raw score at the warm-up tail's median scores 0.1."""
    model = calibrated(_shuffled_tail())
    assert score(model, (TAIL - 1) / 2) == pytest.approx(0.1)


def test_higher_raw_score_scores_higher() -> None:
    """The calibrated score rises strictly with the raw score over the useful range."""
    model = calibrated(_shuffled_tail())
    scores = [score(model, raw) for raw in range(-50, 400, 10)]
    assert all(a < b for a, b in itertools.pairwise(scores))
    assert all(0.0 <= s < 1.0 for s in scores)


def test_score_stays_below_one_far_past_the_threshold() -> None:
    """Raw scores far past the threshold still score below 1, the further the higher."""
    model = calibrated(_shuffled_tail())
    far, further = score(model, 2_000.0), score(model, 10_000.0)
    assert far < further < 1.0
