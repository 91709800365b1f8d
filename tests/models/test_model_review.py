"""Edge cases from review: late and constant metrics, reloads, readiness, bad parameters.

Also: one asset's broken model leaves the other assets scored.
"""

from __future__ import annotations

import math
import random

import pytest
from modelkit import ts

from ingest.base import Reading
from models.asset import AssetModel
from models.checkpoints import CheckpointStore
from models.controlchart import ControlChart
from models.errors import ProfileError
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor
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


@pytest.mark.parametrize(
    "params", [{"split": 900}, {"margin": 0}, {"split": 0}], ids=["split-past", "margin", "split-0"]
)
def test_bad_chart_parameters_fail_when_the_profile_is_built(params: dict[str, float]) -> None:
    """A split outside the warm-up or a non-positive margin is refused at once, named."""
    profile = ProfileSettings(
        name="bad", detectors=(DetectorSpec(type="control_chart", params=params),)
    )
    with pytest.raises(ProfileError, match="'bad'"):
        AssetModel(profile)


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


def test_a_reloaded_asset_keeps_its_profile_when_readings_carry_no_kind(
    store: CheckpointStore,
) -> None:
    """Kind only on the first payload: after a restart the asset keeps the 'mills' profile."""
    profiles = (
        ProfileSettings(name="default"),
        ProfileSettings(name="mills", kinds=("cnc-mill",), warmup=50),
    )
    rng = random.Random(5)
    first = ModelRegistry(ProfileSelector(profiles), store)
    model = first.get("s", "a", "cnc-mill")
    for i in range(80):
        model.process(ts(i), _normal(rng))
    first.touched("s", "a")
    first.checkpoint()
    again = ModelRegistry(ProfileSelector(profiles), store).get("s", "a", None)
    assert again.profile.name == "mills"
    assert not again.warming_up


def test_one_broken_model_costs_only_its_own_scores(store: CheckpointStore) -> None:
    """A model that raises leaves that reading unscored and every other reading scored."""
    processor = ScoringProcessor(
        ModelRegistry(ProfileSelector((ProfileSettings(name="default"),)), store)
    )
    broken = processor.registry.get("s", "bad", None)

    def explode(ts: int, metrics: object) -> None:
        raise RuntimeError("corrupt model")

    broken.process = explode  # type: ignore[method-assign]
    readings = [Reading("s", asset, None, ts(0), {"t": 1.0}) for asset in ("a", "bad", "b")]
    points = processor.process(readings)
    assert [p.tags["asset"] for p in points] == ["a", "b"]
    assert processor.failures == 1


def test_chart_ready_only_after_its_fit() -> None:
    """The chart is ready once its warm-up is fitted, not before."""
    chart = ControlChart(warmup=50, split=40)
    for i in range(49):
        chart.learn_one({"t": float(i % 3)})
    assert not chart.ready
    chart.learn_one({"t": 1.0})
    assert chart.ready


def test_a_large_checkpoint_is_spread_over_batches(store: CheckpointStore) -> None:
    """5,000 models that moved are saved 2,000 per batch, not all in one batch."""
    now = [0.0]
    registry = ModelRegistry(
        ProfileSelector((ProfileSettings(name="default"),)),
        store,
        max_models=10_000,
        checkpoint_interval=60,
        clock=lambda: now[0],
    )
    for n in range(5_000):
        registry.get("s", f"a{n}", None)
        registry.touched("s", f"a{n}")
    now[0] = 61.0
    saved = []
    for _ in range(3):
        registry.maybe_checkpoint()
        saved.append(store.count())
    assert saved == [2_000, 4_000, 5_000]


_SMOOTH_LOAD = (
    "operating_states: with the load swinging smoothly (no step) every 2 or 10 minutes, the "
    "memory holds one state "
    "and the relations only explain, never accuse (relations that accused doubled the false "
    "alarms on the simulated fleets): a fault inside a smoothly load-driven range is missed. "
    "Open in issue 11's closing note; the control chart catches it (the test below)"
)


def _load_driven_fault(profile: ProfileSettings, cycle: int) -> tuple[int, int | None]:
    """Healthy readings flagged, and how soon a +15 % temperature leaving the load is."""
    rng = random.Random(cycle)
    model = AssetModel(profile)
    flagged_healthy, first = 0, None
    for i in range(1200):
        load = 0.5 + 0.5 * math.sin(2 * math.pi * i / cycle)
        bases = {"rpm": 12_000.0, "current": 14.0, "vibration": 0.4, "temp": 55.0}
        x = {k: b * (0.8 + 0.4 * load) * (1 + rng.gauss(0, 0.02)) for k, b in bases.items()}
        if i >= 900:
            x["temp"] *= 1 + 0.15 * min(1.0, (i - 900) / 60)
        verdict = model.process(ts(i), x)
        if i < 900:
            flagged_healthy += verdict.anomalous
        elif verdict.anomalous and first is None:
            first = i - 900
            assert verdict.top_metric == "temp"
    return flagged_healthy, first


@pytest.mark.parametrize(
    "cycle",
    [
        pytest.param(120, marks=pytest.mark.xfail(strict=True, reason=_SMOOTH_LOAD)),
        300,
        pytest.param(600, marks=pytest.mark.xfail(strict=True, reason=_SMOOTH_LOAD)),
    ],
)
def test_a_fault_inside_the_load_driven_range_is_caught(cycle: int) -> None:
    """A duty-cycled machine: +15 % temperature that leaves the load is flagged, not before."""
    flagged_healthy, first = _load_driven_fault(ProfileSettings(name="default"), cycle)
    assert flagged_healthy == 0
    assert first is not None and first < 60


@pytest.mark.parametrize("cycle", [120, 300, 600])
def test_the_control_chart_catches_a_fault_inside_the_load_driven_range(cycle: int) -> None:
    """With the control chart, the +15 % temperature is flagged within 60 readings."""
    chart = ProfileSettings(name="chart", detectors=(DetectorSpec(type="control_chart"),))
    flagged_healthy, first = _load_driven_fault(chart, cycle)
    assert flagged_healthy == 0
    assert first is not None and first < 60
