"""Unit tests of `models.registry.ModelRegistry`: per-asset models, LRU bound, checkpoints.

The registry is driven the way the pipeline drives it, through `ScoringProcessor`, except
where a test needs its methods one by one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from modelkit import Clock, deviated, healthy, reading, ts

from ingest.base import Point, Reading
from models.checkpoints import CheckpointStore
from models.profiles import ProfileSelector, fingerprint
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor
from models.settings import ProfileSettings

WARMUP = 100
PROFILES = (
    ProfileSettings(name="default", warmup=WARMUP),
    ProfileSettings(name="mills", kinds=("cnc-mill",), warmup=WARMUP),
)


def _registry(
    store: CheckpointStore | None,
    clock: Clock | None = None,
    *,
    max_models: int = 10_000,
    interval: float = 60.0,
    profiles: tuple[ProfileSettings, ...] = PROFILES,
) -> ModelRegistry:
    return ModelRegistry(
        ProfileSelector(profiles),
        store,
        max_models=max_models,
        checkpoint_interval=interval,
        clock=clock or Clock(),
    )


def _stream(assets: Sequence[str], start: int, count: int, seed: int, fault: str = "") -> list:
    """`count` readings of each asset in turn, in blocks of 20; `fault` runs 12 sigma hot."""
    rng = random.Random(seed)
    out: list[Reading] = []
    for block in range(start, start + count, 20):
        for asset in assets:
            for i in range(block, min(block + 20, start + count)):
                metrics = deviated(rng, "spindle_temp_c", 12) if asset == fault else healthy(rng)
                out.append(reading(asset, i, metrics))
    return out


def _learn(registry: ModelRegistry, asset: str, i: int, seed: int = 0) -> None:
    """One healthy reading learned by `asset`'s model, noted as the pipeline notes it."""
    model = registry.get("s1", asset, "cnc-mill")
    model.process(ts(i), healthy(random.Random(seed * 1000 + i)))
    registry.touched("s1", asset)


def _by_asset(points: list[Point], asset: str) -> list[Point]:
    return [p for p in points if p.tags["asset"] == asset]


def test_same_asset_gets_the_same_model() -> None:
    """An asset keeps its model; another asset gets another one."""
    registry = _registry(None)
    first = registry.get("s1", "m1", None)
    assert registry.get("s1", "m1", None) is first
    assert registry.get("s1", "m2", None) is not first
    assert registry.get("s2", "m1", None) is not first


def test_new_asset_gets_the_selected_profile() -> None:
    """A new asset's model is built from the profile its kind selects."""
    registry = _registry(None)
    assert registry.get("s1", "m1", "cnc-mill").profile.name == "mills"
    assert registry.get("s1", "p1", "pump").profile.name == "default"


def test_models_in_memory_stay_within_max_models(store: CheckpointStore) -> None:
    """Beyond max_models, the least recently used models leave memory."""
    registry = _registry(store, max_models=3)
    for n in range(10):
        registry.get("s1", f"m{n}", None)
        assert len(registry) <= 3
    assert len(registry) >= 1


def test_evicted_dirty_models_are_checkpointed(store: CheckpointStore) -> None:
    """Evicting checkpoints the models that learned and drops the others unsaved."""
    registry = _registry(store, max_models=2)
    _learn(registry, "a", 0)
    registry.get("s1", "b", "cnc-mill")  # never learns
    registry.get("s1", "c", "cnc-mill")  # evicts a, the least recently used
    registry.get("s1", "d", "cnc-mill")  # evicts b
    assert store.count() == 1
    assert store.load(("s1", "a"), fingerprint(PROFILES[1])) is not None


def test_recently_used_model_is_not_evicted(store: CheckpointStore) -> None:
    """Using a model makes it the most recent: the least recently used one goes instead."""
    registry = _registry(store, max_models=2)
    a = registry.get("s1", "a", None)
    registry.get("s1", "b", None)
    registry.get("s1", "a", None)
    registry.get("s1", "c", None)
    assert registry.get("s1", "a", None) is a


def test_reloaded_models_score_like_never_evicted_ones(store: CheckpointStore) -> None:
    """Models evicted and reloaded over and over give the points of models never evicted."""
    assets = ["a", "b", "c", "d", "e"]
    bounded = ScoringProcessor(_registry(store, max_models=2))
    unbounded = ScoringProcessor(_registry(None))
    stream = _stream(assets, 0, 140, seed=61)
    points = bounded.process(stream)
    assert points == unbounded.process(stream)
    assert store.count() == len(assets)  # every asset was evicted at least once
    assert not points[-1].fields["warming_up"]


def test_asset_evicted_mid_fault_scores_like_never_evicted(
    store: CheckpointStore, clock: Clock
) -> None:
    """An asset evicted during a fault reloads the state it had, so its verdicts carry on."""
    bounded = ScoringProcessor(_registry(store, clock, max_models=1))
    unbounded = ScoringProcessor(_registry(None))
    batches = [
        _stream(["a"], 0, 100, seed=63),
        _stream(["a"], 100, 20, seed=64, fault="a"),
        _stream(["a"], 120, 10, seed=65, fault="a"),
        _stream(["b"], 0, 1, seed=66),
        _stream(["a"], 130, 10, seed=67, fault="a"),
    ]
    results = []
    for n, batch in enumerate(batches):
        if n == 2:
            bounded.registry.checkpoint()  # the periodic save, mid-fault
        results.append((bounded.process(batch), unbounded.process(batch)))
    after_bounded, after_unbounded = results[-1]
    assert after_bounded == after_unbounded


def test_without_checkpoints_an_evicted_asset_starts_fresh() -> None:
    """With no checkpoint store (evaluation), eviction forgets the model."""
    registry = _registry(None, max_models=1)
    for i in range(10):
        _learn(registry, "a", i)
    registry.get("s1", "b", None)
    assert registry.get("s1", "a", "cnc-mill").learned == 0


def test_maybe_checkpoint_saves_only_after_the_interval(
    store: CheckpointStore, clock: Clock
) -> None:
    """maybe_checkpoint saves nothing before checkpoint_interval seconds, then the dirty models."""
    registry = _registry(store, clock, interval=60.0)
    _learn(registry, "a", 0)
    clock.advance(59.9)
    registry.maybe_checkpoint()
    assert store.count() == 0
    clock.advance(0.1)
    registry.maybe_checkpoint()
    assert store.count() == 1


def test_maybe_checkpoint_restarts_the_interval(store: CheckpointStore, clock: Clock) -> None:
    """After a save, the next one waits a whole interval again."""
    registry = _registry(store, clock, interval=60.0)
    _learn(registry, "a", 0)
    clock.advance(60)
    registry.maybe_checkpoint()
    _learn(registry, "b", 0)
    clock.advance(30)
    registry.maybe_checkpoint()
    assert store.count() == 1
    clock.advance(30)
    registry.maybe_checkpoint()
    assert store.count() == 2


def test_checkpoint_saves_only_models_that_learned(store: CheckpointStore) -> None:
    """Checkpoint() saves the models that learned since the last save, and only those."""
    registry = _registry(store)
    _learn(registry, "a", 0)
    _learn(registry, "b", 0)
    registry.get("s1", "c", None)
    assert registry.checkpoint() == 2
    _learn(registry, "a", 1)
    assert registry.checkpoint() == 1
    assert registry.checkpoint() == 0


def test_close_saves_what_learned(checkpoint_path: Path) -> None:
    """Close() checkpoints the models that learned since the last save and closes the file."""
    registry = _registry(CheckpointStore(checkpoint_path))
    for i in range(5):
        _learn(registry, "a", i)
    registry.close()
    reopened = CheckpointStore(checkpoint_path)
    try:
        assert reopened.count() == 1
    finally:
        reopened.close()


def test_changed_profile_gives_a_fresh_model(
    checkpoint_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After the asset's profile changed, its old checkpoint is set aside and it warms up anew."""
    before = _registry(CheckpointStore(checkpoint_path))
    for i in range(WARMUP + 5):
        _learn(before, "a", i)
    before.close()
    changed = (PROFILES[0], PROFILES[1].model_copy(update={"warmup": WARMUP + 40}))
    after = _registry(CheckpointStore(checkpoint_path), profiles=changed)
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        model = after.get("s1", "a", "cnc-mill")
    after.close()
    assert (model.learned, model.warming_up) == (0, True)
    assert "set aside" in caplog.text


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
        model.process(ts(i), healthy(rng))
    first.touched("s", "a")
    first.checkpoint()
    again = ModelRegistry(ProfileSelector(profiles), store).get("s", "a", None)
    assert again.profile.name == "mills"
    assert not again.warming_up


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
