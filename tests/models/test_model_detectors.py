"""One conformance suite over every detector spec, run through `AssetModel`.

As river's ``check_estimator`` does, each spec must pass the same checks; a known failure of
one spec is a strict xfail naming the reason, so a fix shows up as XPASS.
"""

from __future__ import annotations

import copy
import functools
import itertools
import pickle
import random
import statistics

import pytest
from modelkit import (
    METRICS,
    SPECS,
    at_operating_point,
    deviated,
    feed,
    healthy,
    next_index,
    probe,
    probe_each,
    profile,
    spec_params,
    trained,
)

from models.asset import AssetModel
from models.base import Detector
from models.errors import ProfileError
from models.settings import DetectorSpec, ProfileSettings

# Why some specs fail a check (each reproduced on seeded data; see the report).
_HST_BLIND = (
    "half_space_trees behind a MinMaxScaler puts every reading beyond the learned range in "
    "the same edge leaf: 3 sigma and 1e6 sigma score the same, under the threshold"
)
_OCSVM_ONE_SIDED = (
    "one_class_svm is linear (no kernel approximation): its score falls as a metric moves "
    "in one direction, so a gross outlier that way scores ~0"
)
_FIXED_BASELINE = (
    "the control chart's baseline is fixed after warm-up (documented trade-off in README); "
    "issue 3 asks for a threshold that follows slow normal drift"
)
_NO_SPREAD_ADAPTATION = (
    "control_chart's `adapt` moves only the level baselines; the roughness baseline and the "
    "scales never follow, so noise that slowly doubled alarms forever"
)
_OCSVM_LOCKS = (
    "one_class_svm's StandardScaler never forgets: a slow level shift soon crosses the "
    "threshold on every reading, which is then never learned (permanent alarm)"
)
_FOLLOWS_ONLY_SLOW_DRIFT = (
    "operating_states follows drift at 1/600 per reading and stops learning once readings "
    "score a third of the threshold (issue 11: slow faults must still fire): every metric "
    "moving 4 sigma in 3,000 readings is judged, as a slow fault is; slower drift is "
    "followed (test_operating_states_follows_ambient_drift)"
)
_RAMP_LEARNED = (
    "readings of a slow ramp that stay under the threshold are learned, so the detector's "
    "normal follows the fault and the held fault is no longer flagged"
)


@functools.cache
def _trained(spec: str) -> AssetModel:
    """The spec's model after its warm-up and 100 healthy readings (shared: probe copies)."""
    return trained(profile(spec))


def _stream(model: AssetModel, readings: list[dict[str, float]]) -> list:
    return feed(model, readings, next_index(model))


@pytest.mark.parametrize("spec", spec_params())
def test_warm_up_never_flags(spec: str) -> None:
    """No reading is flagged while the model warms up, however wild the readings are."""
    rng = random.Random(5)
    prof = profile(spec, warmup=100)
    readings = [deviated(rng, "spindle_temp_c", 50 * (i % 3)) for i in range(prof.warmup)]
    verdicts = feed(AssetModel(prof), readings, 0)
    assert all(v.warming_up and not v.anomalous for v in verdicts)


@pytest.mark.parametrize("spec", spec_params())
def test_every_detector_keeps_the_detector_contract(spec: str) -> None:
    """Each is a `Detector`: not ready (scoring 0) before its warm-up, ready after it."""
    prof = profile(spec)
    detectors = AssetModel(prof).detectors
    assert all(isinstance(d, Detector) for d in detectors)
    assert [(d.ready, d.score_one(healthy(random.Random(0)))) for d in detectors] == [
        (False, 0.0)
    ] * len(detectors)
    assert all(d.ready and isinstance(d.top_metric, str) for d in trained(prof).detectors)


@pytest.mark.parametrize("spec", spec_params())
def test_healthy_readings_score_low(spec: str) -> None:
    """After warm-up, healthy readings score low and few cross the threshold."""
    rng = random.Random(11)
    verdicts = probe(_trained(spec), [healthy(rng) for _ in range(1000)])
    assert statistics.median(v.score for v in verdicts) < 0.3
    assert sum(v.score > v.threshold for v in verdicts) < 50


@pytest.mark.parametrize(
    "spec",
    spec_params(
        {
            "half_space_trees": _HST_BLIND,
            "one_class_svm": _OCSVM_ONE_SIDED,
        }
    ),
)
def test_gross_outlier_crosses_threshold_in_any_direction(spec: str) -> None:
    """A single reading 30 sigma off on any metric, either way, scores over the threshold."""
    probes = [at_operating_point(m, s) for m in METRICS for s in (30.0, -30.0)]
    verdicts = probe_each(_trained(spec), probes)
    assert [v.score > v.threshold for v in verdicts] == [True] * len(probes)


@pytest.mark.parametrize(
    "spec",
    spec_params({"half_space_trees": _HST_BLIND, "one_class_svm": _OCSVM_ONE_SIDED}),
)
def test_further_from_normal_scores_higher(spec: str) -> None:
    """Moving one metric further from normal (0 to 8 sigma) strictly raises the score."""
    probes = [at_operating_point(sigmas=s) for s in (0, 1, 2, 3, 4, 6, 8)]
    scores = [v.score for v in probe_each(_trained(spec), probes)]
    assert all(a < b for a, b in itertools.pairwise(scores)), scores


@pytest.mark.parametrize(
    "spec",
    spec_params({}),
)
def test_scores_stay_below_one(spec: str) -> None:
    """Even absurd readings (1e3 and 1e6 sigma, either way) score in [0, 1)."""
    probes = [at_operating_point(m, s) for m in METRICS for s in (1e3, -1e3, 1e6, -1e6)]
    scores = [v.score for v in probe_each(_trained(spec), probes)]
    assert all(0.0 <= s < 1.0 for s in scores), scores


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("spec", spec_params())
def test_top_metric_names_the_deviating_metric(spec: str, metric: str) -> None:
    """When only one metric jumps by 10 sigma (for 5 readings), top_metric names it."""
    rng = random.Random(13)
    verdicts = probe(_trained(spec), [deviated(rng, metric, 10) for _ in range(5)])
    assert verdicts[-1].top_metric == metric


@pytest.mark.parametrize("spec", spec_params())
def test_same_stream_gives_same_verdicts(spec: str) -> None:
    """Two models fed the same seeded stream give identical verdicts."""
    rng = random.Random(17)
    probes = [healthy(rng) for _ in range(50)] + [deviated(rng, "vibration_rms", 8)] * 5
    first = trained(profile(spec))
    second = trained(profile(spec))
    assert probe(first, probes) == probe(second, probes)


@pytest.mark.parametrize("spec", spec_params())
def test_pickle_round_trip_keeps_verdicts(spec: str) -> None:
    """A model restored from its pickle gives the same verdicts as the original."""
    rng = random.Random(19)
    probes = [healthy(rng) for _ in range(50)] + [deviated(rng, "spindle_rpm", 8)] * 5
    model = _trained(spec)
    restored = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    assert probe(restored, probes) == probe(model, probes)


@pytest.mark.parametrize("spec", spec_params())
def test_replaying_readings_changes_nothing(spec: str) -> None:
    """Replaying already processed readings (normal and faulty) leaves the model as it was."""
    rng = random.Random(23)
    model = copy.deepcopy(_trained(spec))
    start = next_index(model)
    readings = [healthy(rng) for _ in range(5)] + [deviated(rng, "spindle_temp_c", 12)] * 5
    feed(model, readings, start)
    before = pickle.dumps(model)
    feed(model, readings, start)
    assert pickle.dumps(model) == before


@pytest.mark.parametrize("spec", spec_params())
def test_stationary_stream_keeps_false_alarms_rare(spec: str) -> None:
    """On 3,000 healthy readings after warm-up, under 5 % are flagged, and not increasingly."""
    rng = random.Random(29)
    verdicts = _stream(copy.deepcopy(_trained(spec)), [healthy(rng) for _ in range(3000)])
    early = sum(v.anomalous for v in verdicts[:1500])
    late = sum(v.anomalous for v in verdicts[1500:])
    assert early + late < 150
    assert late <= max(2 * early, 30)


@pytest.mark.parametrize("spec", spec_params())
def test_bad_detector_parameter_names_the_profile(spec: str) -> None:
    """A detector parameter its constructor does not take raises ProfileError naming the profile."""
    bad = tuple(
        DetectorSpec(type=d.type, params={**d.params, "no_such_param": 1}) for d in SPECS[spec]
    )
    with pytest.raises(ProfileError, match="profile 'mill'"):
        AssetModel(ProfileSettings(name="mill", detectors=bad))


@pytest.mark.parametrize(
    ("spec", "change"),
    [
        *spec_params(
            {
                "control_chart": _FIXED_BASELINE,
                "control_chart-adapt": _NO_SPREAD_ADAPTATION,
                "ensemble": _FIXED_BASELINE,
            },
            "spread",
        ),
        *spec_params(
            {
                "control_chart": _FIXED_BASELINE,
                "one_class_svm": _OCSVM_LOCKS,
                "ensemble": _FIXED_BASELINE,
                "operating_states": _FOLLOWS_ONLY_SLOW_DRIFT,
            },
            "level",
        ),
    ],
)
def test_threshold_follows_slow_normal_drift(spec: str, change: str) -> None:
    """When the noise slowly doubles, or the level slowly moves 4 sigma, alarms stop."""
    rng = random.Random(31)

    def drifted(f: float) -> dict[str, float]:
        return healthy(rng, spread=1 + f) if change == "spread" else healthy(rng, shift=4 * f)

    model = copy.deepcopy(_trained(spec))
    _stream(model, [drifted(i / 3000) for i in range(3000)])
    _stream(model, [drifted(1.0) for _ in range(3000)])
    verdicts = _stream(model, [drifted(1.0) for _ in range(1000)])
    assert sum(v.anomalous for v in verdicts) < 50


@pytest.mark.parametrize("spec", spec_params({"half_space_trees": _HST_BLIND}))
def test_sudden_level_shift_is_flagged(spec: str) -> None:
    """The same 4 sigma level shift arriving at once is flagged (the drift test is not vacuous)."""
    rng = random.Random(31)
    verdicts = probe(_trained(spec), [healthy(rng, shift=4) for _ in range(200)])
    assert sum(v.anomalous for v in verdicts[20:]) > 120


@pytest.mark.parametrize(
    "spec",
    spec_params(
        {
            "mahalanobis": _RAMP_LEARNED,
            "zscore": _RAMP_LEARNED,
            "half_space_trees": _RAMP_LEARNED,
            "control_chart-adapt": "adapt follows readings under guard x threshold, so a slow "
            "ramp drags the level baseline along (README: 'slow faults are partly learned')",
        }
    ),
)
def test_slow_fault_stays_flagged(spec: str) -> None:
    """A temperature ramping to +15 sigma over 2,000 readings, then held, stays flagged."""
    rng = random.Random(37)
    ramp = [deviated(rng, "spindle_temp_c", 15 * i / 2000) for i in range(2000)]
    held = [deviated(rng, "spindle_temp_c", 15) for _ in range(200)]
    verdicts = probe(_trained(spec), ramp + held)
    assert sum(v.anomalous for v in verdicts[2000:]) >= 190


def test_half_space_trees_with_short_warm_up_keeps_false_alarms_rare() -> None:
    """A half_space_trees profile with a 200-reading warm-up does not flag healthy readings."""
    rng = random.Random(43)
    model = trained(profile("half_space_trees", warmup=200))
    verdicts = probe(model, [healthy(rng) for _ in range(500)])
    assert sum(v.anomalous for v in verdicts) < 25
