"""Unit tests of `AssetModel`'s warm-up: metrics that come late or never move, readiness."""

from __future__ import annotations

import random

from modelkit import ts

from models.asset import AssetModel
from models.settings import DetectorSpec, ProfileSettings


def _normal(rng: random.Random, **extra: float) -> dict[str, float]:
    return {"temp": 60 + rng.gauss(0, 1), "current": 10 + rng.gauss(0, 0.2), **extra}


def test_a_metric_first_sent_during_warm_up_is_modelled() -> None:
    """A metric that appears halfway through the warm-up gets a baseline and is watched.

    (Its step is judged once the default model's grace of 40 readings has passed.)
    """
    rng = random.Random(1)
    model = AssetModel(ProfileSettings(name="p", warmup=200))
    for i in range(100):
        model.process(ts(i), _normal(rng))
    for i in range(100, 300):
        model.process(ts(i), _normal(rng, pressure=5 + rng.gauss(0, 0.05)))
    verdicts = [model.process(ts(300 + i), _normal(rng, pressure=7.0)) for i in range(60)]
    assert verdicts[-1].anomalous
    assert verdicts[-1].top_metric == "pressure"


def test_a_first_reading_without_the_profile_metrics_does_not_break_the_model() -> None:
    """Readings that lack the profile's metrics at first are scored, never crash."""
    rng = random.Random(2)
    model = AssetModel(ProfileSettings(name="p", warmup=100, metrics=("temp",)))
    model.process(ts(0), {"other": 1.0})
    verdicts = [model.process(ts(i), _normal(rng)) for i in range(1, 200)]
    assert not any(v.anomalous for v in verdicts)


def test_a_metric_constant_in_warm_up_does_not_alarm_when_it_changes() -> None:
    """A mode flag that never moved in the warm-up gives no level evidence when it flips."""
    rng = random.Random(3)
    model = AssetModel(ProfileSettings(name="p", warmup=200))
    for i in range(250):
        model.process(ts(i), _normal(rng, mode=0.0))
    flipped = [model.process(ts(250 + i), _normal(rng, mode=float(i % 2))) for i in range(50)]
    assert not any(v.anomalous for v in flipped)
    assert all(v.score < 1.0 for v in flipped)


def test_warming_up_lasts_until_every_detector_can_score() -> None:
    """HalfSpaceTrees scores nothing before its first window: the model says warming up."""
    rng = random.Random(4)
    profile = ProfileSettings(
        name="p", warmup=100, detectors=(DetectorSpec(type="half_space_trees"),)
    )
    model = AssetModel(profile)
    verdicts = [model.process(ts(i), _normal(rng)) for i in range(150)]
    assert verdicts[120].warming_up
    assert not model.detectors[0].ready or not model.warming_up
