"""Unit tests of `models.asset.AssetModel`: warm-up, persistence, learning policy, replays.

Most run the shipped default detector; the learning-policy tests that compare model state
use ``mahalanobis``, whose scoring does not move its state (the control chart's filters
advance with every reading, learned or not, by design).
"""

from __future__ import annotations

import copy
import pickle
import random

import pytest
from modelkit import (
    METRICS,
    at_operating_point,
    deviated,
    feed,
    healthy,
    next_index,
    probe,
    profile,
    trained,
    ts,
)

from models.asset import AssetModel
from models.settings import ProfileSettings


def _learning(**overrides: object) -> ProfileSettings:
    """A mahalanobis profile with a short warm-up."""
    return profile("mahalanobis", warmup=100, **overrides)  # type: ignore[arg-type]


def _probe_scores(model: AssetModel, seed: int = 41) -> list[float]:
    rng = random.Random(seed)
    return [v.score for v in probe(model, [healthy(rng) for _ in range(20)])]


def _spikes(model: AssetModel, pattern: str, sigmas: float = 12.0) -> list:
    """Feed 'H' (a hit: one metric `sigmas` off) and '.' (healthy) readings."""
    rng = random.Random(43)
    readings = [
        deviated(rng, "spindle_temp_c", sigmas) if c == "H" else healthy(rng) for c in pattern
    ]
    return feed(model, readings, next_index(model))


# --- warm-up -------------------------------------------------------------------------------


def test_warming_up_ends_exactly_after_warmup_learned_readings() -> None:
    """Verdicts are warming_up for the first `warmup` readings and not from the next one."""
    rng = random.Random(1)
    model = AssetModel(profile(warmup=60))
    verdicts = feed(model, [healthy(rng) for _ in range(61)], 0)
    assert [v.warming_up for v in verdicts] == [True] * 60 + [False]
    assert model.learned == 61
    assert not model.warming_up


def test_warming_up_until_the_last_warm_up_reading_is_learned() -> None:
    """After warmup - 1 readings the model still warms up; the warmup-th reading ends it."""
    rng = random.Random(1)
    model = AssetModel(profile(warmup=60))
    feed(model, [healthy(rng) for _ in range(59)], 0)
    assert model.warming_up
    model.process(ts(59), healthy(rng))
    assert not model.warming_up


def test_duplicate_timestamps_do_not_count_towards_warm_up() -> None:
    """A redelivered reading during warm-up is not learned, so the warm-up lasts one longer."""
    rng = random.Random(1)
    model = AssetModel(profile(warmup=60))
    feed(model, [healthy(rng) for _ in range(30)], 0)
    model.process(ts(29), healthy(rng))
    feed(model, [healthy(rng) for _ in range(30)], 30)
    assert model.learned == 60
    assert model.process(ts(60), healthy(rng)).warming_up is False


def test_nothing_flagged_during_warm_up_even_when_faulty() -> None:
    """A fault during the warm-up is never flagged (the model does not know normal yet)."""
    rng = random.Random(2)
    verdicts = feed(
        AssetModel(profile(warmup=60)),
        [deviated(rng, "spindle_temp_c", 40) for _ in range(60)],
        0,
    )
    assert not any(v.anomalous for v in verdicts)


# --- verdict fields ------------------------------------------------------------------------


def test_threshold_is_one_half_on_every_verdict() -> None:
    """Calibrated scores put the asset's own threshold at 0.5 on every reading."""
    rng = random.Random(3)
    model = trained(profile(warmup=100))
    verdicts = probe(model, [healthy(rng) for _ in range(20)] + [at_operating_point(sigmas=30)])
    assert {v.threshold for v in verdicts} == {0.5}


@pytest.mark.parametrize("metric", METRICS)
def test_top_metric_names_the_jumping_metric(metric: str) -> None:
    """When only one metric jumps by 10 sigma, the default profile names it in top_metric."""
    rng = random.Random(4)
    model = trained(profile(warmup=100))
    verdicts = probe(model, [deviated(rng, metric, 10) for _ in range(5)])
    assert verdicts[-1].top_metric == metric
    assert verdicts[-1].anomalous


def test_top_metric_uses_each_metrics_own_scale() -> None:
    """A 10-unit rpm wobble (1 sigma) loses to a 3-unit temperature rise (3 sigma)."""
    model = trained(profile("mahalanobis", warmup=100))
    reading = at_operating_point("spindle_temp_c", 3)
    reading["spindle_rpm"] += 10.0
    (verdict,) = probe(model, [reading])
    assert verdict.top_metric == "spindle_temp_c"


# --- persistence ---------------------------------------------------------------------------


def test_single_spike_is_not_flagged() -> None:
    """One reading over the threshold is not a failing machine when min_hits is above 1."""
    model = trained(_learning(window=3, min_hits=2))
    verdicts = _spikes(model, "...H...")
    assert verdicts[3].score > verdicts[3].threshold
    assert not any(v.anomalous for v in verdicts)


@pytest.mark.parametrize(
    ("window", "min_hits"),
    [
        (1, 1),
        (3, 2),
        (3, 3),
        (4, 3),
        (10, 6),
        (20, 12),
    ],
    ids=["1of1", "2of3", "3of3", "3of4", "6of10", "12of20"],
)
def test_min_hits_consecutive_hits_flag(window: int, min_hits: int) -> None:
    """min_hits consecutive readings over the threshold flag the asset, at the min_hits-th."""
    model = trained(_learning(window=window, min_hits=min_hits), extra=window + 20)
    verdicts = _spikes(model, "H" * min_hits)
    assert [v.anomalous for v in verdicts] == [False] * (min_hits - 1) + [True]


def test_scattered_hits_within_window_flag() -> None:
    """6 hits among 8 readings flag with window 10 / min_hits 6, though never 6 in a row."""
    model = trained(_learning(window=10, min_hits=6), extra=40)
    verdicts = _spikes(model, "HH.HH.HH")
    assert verdicts[-1].anomalous


def test_hits_older_than_window_are_forgotten() -> None:
    """Hits that slid out of the window no longer count towards min_hits."""
    model = trained(_learning(window=3, min_hits=2))
    verdicts = _spikes(model, "H..H")
    assert verdicts[3].score > verdicts[3].threshold
    assert not verdicts[3].anomalous


# --- learning policy -----------------------------------------------------------------------


def test_reading_over_threshold_does_not_teach() -> None:
    """A spike over the threshold leaves the learned count and the model's scores unchanged."""
    model = trained(_learning())
    before = copy.deepcopy(model)
    (verdict,) = _spikes(model, "H")
    assert verdict.score > verdict.threshold
    assert model.learned == before.learned
    assert _probe_scores(model) == _probe_scores(before)


def test_flagged_readings_do_not_teach() -> None:
    """A sustained fault, flagged throughout, teaches the model nothing."""
    model = trained(_learning())
    before = copy.deepcopy(model)
    verdicts = _spikes(model, "H" * 20)
    assert all(v.anomalous for v in verdicts)
    assert model.learned == before.learned
    assert _probe_scores(model) == _probe_scores(before)


def test_flagged_readings_do_not_teach_the_default_profile() -> None:
    """With the shipped default detector, flagged readings are not counted as learned."""
    rng = random.Random(5)
    model = trained(profile(warmup=100))
    learned = model.learned
    verdicts = feed(
        model, [deviated(rng, "vibration_rms", 15) for _ in range(20)], next_index(model)
    )
    flagged = sum(v.anomalous for v in verdicts)
    assert flagged > 10
    assert model.learned == learned + 20 - flagged


def test_learn_anomalous_lets_flagged_readings_teach() -> None:
    """With learn_anomalous, a flagged fault is learned: the count grows and scores move."""
    model = trained(_learning(learn_anomalous=True))
    before = copy.deepcopy(model)
    verdicts = _spikes(model, "H" * 20)
    assert verdicts[0].anomalous
    assert model.learned == before.learned + 20
    assert _probe_scores(model) != _probe_scores(before)


def test_slow_fault_stays_flagged_with_default_profile() -> None:
    """A temperature creeping to +15 sigma over 2,000 readings stays flagged when held."""
    rng = random.Random(6)
    model = trained(profile())
    ramp = [deviated(rng, "spindle_temp_c", 15 * i / 2000) for i in range(2000)]
    held = [deviated(rng, "spindle_temp_c", 15) for _ in range(100)]
    verdicts = feed(model, ramp + held, next_index(model))
    assert all(v.anomalous for v in verdicts[2000:])


# --- duplicate timestamps ------------------------------------------------------------------


def test_reading_at_last_timestamp_is_scored_not_learned() -> None:
    """A reading at the last timestamp gets a verdict but changes neither count nor state."""
    rng = random.Random(7)
    model = trained(_learning())
    last = model.last_ts
    before = pickle.dumps(model)
    verdict = model.process(last, healthy(rng))
    assert 0.0 <= verdict.score < 1.0
    assert pickle.dumps(model) == before


def test_earlier_reading_is_not_learned() -> None:
    """A reading older than the last one (a late redelivery) is not learned."""
    rng = random.Random(7)
    model = trained(profile(warmup=100))
    before = pickle.dumps(model)
    model.process(ts(3), healthy(rng))
    assert pickle.dumps(model) == before


def test_redelivered_recent_reading_gets_its_own_verdict_again() -> None:
    """A redelivery of a recent reading returns the verdict it had: its record is unchanged."""
    model = trained(profile(warmup=100))
    start = next_index(model)
    rng = random.Random(9)
    first = feed(model, [healthy(rng) for _ in range(5)], start)
    again = [model.process(ts(start + i), healthy(rng)) for i in range(5)]
    assert again == first


def test_old_replay_is_scored_like_a_next_reading() -> None:
    """A replay older than the recent verdicts is scored against the current state."""
    model = trained(profile(warmup=100))
    reading = at_operating_point("vibration_rms", 6)
    (expected,) = probe(model, [reading])
    assert model.process(ts(0), reading) == expected


def test_replaying_the_stream_gives_the_same_model() -> None:
    """Replaying the whole stream, fault included, leaves the pickled model byte-identical."""
    rng = random.Random(8)
    readings = [healthy(rng) for _ in range(200)]
    readings += [deviated(rng, "spindle_temp_c", 12) for _ in range(20)]
    readings += [healthy(rng) for _ in range(20)]
    model = AssetModel(profile(warmup=100))
    feed(model, readings, 0)
    once = pickle.dumps(model)
    feed(model, readings, 0)
    assert pickle.dumps(model) == once


def test_redelivered_fault_does_not_flag_the_next_reading() -> None:
    """Redelivering old faulty readings does not turn the next healthy reading anomalous."""
    rng = random.Random(9)
    model = trained(_learning(window=3, min_hits=2))
    start = next_index(model)
    fault = [deviated(rng, "spindle_temp_c", 12) for _ in range(5)]
    feed(model, fault + [healthy(rng) for _ in range(10)], start)
    feed(model, fault, start)
    (verdict,) = feed(model, [healthy(rng)], start + 15)
    assert not verdict.anomalous
