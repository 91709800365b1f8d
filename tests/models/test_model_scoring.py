"""Tests of `models.scoring.ScoringProcessor`: one docs/design.md §5 ``anomaly`` point a reading."""

from __future__ import annotations

import random
from pathlib import Path

from modelkit import Clock, deviated, healthy, reading, ts

from ingest.base import Reading
from models.checkpoints import CheckpointStore
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor
from models.settings import ProfileSettings

WARMUP = 100
PROFILES = (
    ProfileSettings(name="default", warmup=WARMUP),
    ProfileSettings(name="mills", kinds=("cnc-mill",), warmup=WARMUP),
)


def _processor(
    store: CheckpointStore | None = None, clock: Clock | None = None, interval: float = 60.0
) -> ScoringProcessor:
    registry = ModelRegistry(
        ProfileSelector(PROFILES),
        store,
        checkpoint_interval=interval,
        clock=clock or Clock(),
    )
    return ScoringProcessor(registry)


def _healthy(assets: list[str], start: int, count: int, seed: int) -> list[Reading]:
    rng = random.Random(seed)
    return [reading(a, i, healthy(rng)) for i in range(start, start + count) for a in assets]


def test_one_anomaly_point_per_reading_in_order() -> None:
    """Each reading yields one `anomaly` point at the reading's time, in the readings' order."""
    readings = _healthy(["m1", "m2", "m3"], 0, 4, seed=71)
    points = _processor().process(readings)
    assert [p.measurement for p in points] == ["anomaly"] * len(readings)
    assert [(p.tags["asset"], p.ts) for p in points] == [(r.asset, r.ts) for r in readings]


def test_point_tags_are_site_asset_and_profile() -> None:
    """Tags are exactly site, asset and detector (the asset's profile name)."""
    readings = [
        reading("m1", 0, healthy(random.Random(72))),
        reading("p1", 0, healthy(random.Random(73)), kind="pump"),
        reading("x1", 0, healthy(random.Random(74)), kind=None),
    ]
    points = _processor().process(readings)
    assert [dict(p.tags) for p in points] == [
        {"site": "s1", "asset": "m1", "detector": "mills"},
        {"site": "s1", "asset": "p1", "detector": "default"},
        {"site": "s1", "asset": "x1", "detector": "default"},
    ]


def test_point_fields_follow_the_storage_schema() -> None:
    """Fields are score and threshold (floats in [0, 1]), anomalous, top_metric, warming_up."""
    points = _processor().process(_healthy(["m1"], 0, WARMUP + 20, seed=75))
    assert len(points) == WARMUP + 20
    for point in points:
        fields = point.fields
        assert set(fields) == {"score", "threshold", "anomalous", "top_metric", "warming_up"}
        assert isinstance(fields["score"], float) and 0.0 <= fields["score"] <= 1.0
        assert isinstance(fields["threshold"], float) and 0.0 <= fields["threshold"] <= 1.0
        assert isinstance(fields["anomalous"], bool)
        assert isinstance(fields["top_metric"], str)
        assert isinstance(fields["warming_up"], bool)
    assert points[-1].fields["top_metric"] in {"spindle_temp_c", "vibration_rms", "spindle_rpm"}


def test_warming_up_field_marks_the_first_warmup_readings() -> None:
    """The first `warmup` points of an asset say warming_up, the later ones do not."""
    points = _processor().process(_healthy(["m1"], 0, WARMUP + 5, seed=76))
    assert [p.fields["warming_up"] for p in points] == [True] * WARMUP + [False] * 5


def test_fault_is_flagged_on_its_asset_only() -> None:
    """A fault on one asset of three is flagged there and nowhere else.

    The fault lasts 60 readings: the default model gives a step in one metric 40 readings
    to be followed by the others (a change of state) before judging it.
    """
    processor = _processor()
    processor.process(_healthy(["m1", "m2", "m3"], 0, WARMUP + 40, seed=77))
    rng = random.Random(78)
    batch = [
        reading(a, i, deviated(rng, "spindle_temp_c", 12) if a == "m2" else healthy(rng))
        for i in range(WARMUP + 40, WARMUP + 100)
        for a in ("m1", "m2", "m3")
    ]
    points = processor.process(batch)
    flagged = {p.tags["asset"] for p in points if p.fields["anomalous"]}
    assert flagged == {"m2"}
    assert points[-2].fields["top_metric"] == "spindle_temp_c"


def test_processor_checkpoints_on_the_interval(store: CheckpointStore, clock: Clock) -> None:
    """Processing saves the models that learned once checkpoint_interval has passed."""
    processor = _processor(store, clock, interval=30.0)
    processor.process(_healthy(["m1", "m2"], 0, 5, seed=79))
    assert store.count() == 0
    clock.advance(30.0)
    processor.process(_healthy(["m1"], 5, 1, seed=80))
    assert store.count() == 2


def test_restart_continues_without_a_new_warm_up(checkpoint_path: Path) -> None:
    """After close and a new registry on the same file, scoring carries on as if never stopped."""
    assets = ["m1", "m2", "m3"]
    before = _healthy(assets, 0, WARMUP + 20, seed=81)
    after = _healthy(assets, WARMUP + 20, 30, seed=82)
    rng = random.Random(83)
    after += [reading("m2", WARMUP + 50 + i, deviated(rng, "vibration_rms", 12)) for i in range(60)]

    uninterrupted = _processor()
    uninterrupted.process(before)
    expected = uninterrupted.process(after)

    first = _processor(CheckpointStore(checkpoint_path))
    first.process(before)
    first.close()
    second = _processor(CheckpointStore(checkpoint_path))
    try:
        points = second.process(after)
    finally:
        second.close()
    assert not any(p.fields["warming_up"] for p in points)
    assert points == expected
    assert points[-1].fields["anomalous"]


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
