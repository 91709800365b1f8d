"""`models.sharedcheckpoints.PostgresCheckpoints` on a real PostgreSQL database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from modelkit import (
    checkpoint_probes,
    probe,
    profile,
    saving_again_replaces,
    trained,
)

from models.asset import AssetModel
from models.checkpoints import CheckpointStore
from models.errors import CheckpointError
from models.profiles import fingerprint
from models.sharedcheckpoints import PostgresCheckpoints

pytestmark = pytest.mark.integration

KEY = ("s1", "m1")


def _model() -> AssetModel:
    return trained(profile("operating_states", warmup=100), extra=50)


@pytest.fixture
def instance(postgres_url: str, tmp_path: Path) -> Iterator[PostgresCheckpoints]:
    """One instance's view of the shared checkpoints, its tables emptied for the test."""
    store = PostgresCheckpoints(postgres_url, CheckpointStore(tmp_path / "a" / "models.db"))
    with store._conn.transaction():
        store._conn.execute("TRUNCATE meshwatch_models, meshwatch_set_aside")
    yield store
    store.close()


def test_another_instance_loads_what_one_saved(
    instance: PostgresCheckpoints, postgres_url: str, tmp_path: Path
) -> None:
    """A model saved by one instance gives the same verdicts when another instance loads it."""
    model = _model()
    fp = fingerprint(model.profile)
    assert instance.save([(KEY, model, fp)]) == 1
    other = PostgresCheckpoints(postgres_url, CheckpointStore(tmp_path / "b" / "models.db"))
    try:
        assert other.profile_of(KEY) == model.profile.name
        loaded = other.load(KEY, fp)
    finally:
        other.close()
    assert loaded is not None
    assert probe(loaded, checkpoint_probes()) == probe(model, checkpoint_probes())


def test_saving_again_replaces_the_checkpoint(instance: PostgresCheckpoints) -> None:
    """One row per asset, holding the newer model."""
    saving_again_replaces(instance, _model())


def test_a_checkpoint_of_a_changed_profile_is_set_aside(instance: PostgresCheckpoints) -> None:
    """A fingerprint that does not match: no model, and the row moves to set_aside."""
    model = _model()
    instance.save([(KEY, model, fingerprint(model.profile))])
    assert instance.load(KEY, "another-fingerprint") is None
    assert instance.count() == 0
    with instance._conn.transaction():
        rows = instance._conn.execute("SELECT site, asset, reason FROM meshwatch_set_aside")
        (site, asset, reason), *rest = rows.fetchall()
    assert (site, asset, rest) == (*KEY, [])
    assert "changed since it was saved" in reason


def test_missing_checkpoint_loads_none(instance: PostgresCheckpoints) -> None:
    """An asset never saved has no checkpoint."""
    assert instance.profile_of(KEY) is None
    assert instance.load(KEY, "any") is None


def test_an_unreachable_database_is_a_checkpoint_error(tmp_path: Path) -> None:
    """A URL nobody answers raises `CheckpointError` naming the problem."""
    local = CheckpointStore(tmp_path / "models.db")
    try:
        with pytest.raises(CheckpointError, match="cannot reach the checkpoint database"):
            PostgresCheckpoints("postgresql://127.0.0.1:1/none?connect_timeout=2", local)
    finally:
        local.close()
