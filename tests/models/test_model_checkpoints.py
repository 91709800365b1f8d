"""Unit tests of `models.checkpoints.CheckpointStore` on a real SQLite file."""

from __future__ import annotations

import logging
import pickle
import sqlite3
from pathlib import Path

import pytest
from modelkit import (
    SPECS,
    checkpoint_probes,
    probe,
    profile,
    saving_again_replaces,
    trained,
)

from models import checkpoints
from models.asset import AssetModel
from models.checkpoints import CheckpointStore
from models.profiles import fingerprint

KEY = ("s1", "m1")


def _model(spec: str = "control_chart") -> AssetModel:
    return trained(profile(spec, warmup=100), extra=50)


def _query(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _saved(path: Path) -> list[tuple]:
    return _query(path, "SELECT site, asset FROM models")


def _set_aside(path: Path) -> list[tuple]:
    return _query(path, "SELECT site, asset, profile, reason FROM set_aside")


def _corrupt(path: Path, blob: bytes) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("UPDATE models SET model = ? WHERE site = ? AND asset = ?", (blob, *KEY))
    finally:
        conn.close()


@pytest.mark.parametrize("spec", list(SPECS))
def test_round_trip_gives_identical_verdicts(store: CheckpointStore, spec: str) -> None:
    """A saved and reloaded model gives the same verdicts on probe readings as the original."""
    model = _model(spec)
    fp = fingerprint(model.profile)
    assert store.save([(KEY, model, fp)]) == 1
    loaded = store.load(KEY, fp)
    assert loaded is not None
    assert probe(loaded, checkpoint_probes()) == probe(model, checkpoint_probes())


def test_checkpoint_survives_reopening_the_file(checkpoint_path: Path) -> None:
    """A checkpoint is on disk: a new store on the same file loads it."""
    model = _model()
    fp = fingerprint(model.profile)
    first = CheckpointStore(checkpoint_path)
    first.save([(KEY, model, fp)])
    first.close()
    second = CheckpointStore(checkpoint_path)
    try:
        loaded = second.load(KEY, fp)
    finally:
        second.close()
    assert loaded is not None
    assert probe(loaded, checkpoint_probes()) == probe(model, checkpoint_probes())


def test_saving_again_replaces_the_checkpoint(store: CheckpointStore) -> None:
    """Saving an asset twice keeps one row, holding the newer model."""
    saving_again_replaces(store, _model())


def test_missing_checkpoint_loads_none(store: CheckpointStore) -> None:
    """An asset never saved has no checkpoint."""
    assert store.load(KEY, "0" * 16) is None


def test_other_profile_fingerprint_is_set_aside(
    store: CheckpointStore, checkpoint_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint of a changed profile loads None, moves to set_aside and logs a warning."""
    model = _model()
    store.save([(KEY, model, fingerprint(model.profile))])
    changed = fingerprint(model.profile.model_copy(update={"warmup": 200}))
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        assert store.load(KEY, changed) is None
    assert _saved(checkpoint_path) == []
    [(site, asset, name, reason)] = _set_aside(checkpoint_path)
    assert (site, asset, name) == (*KEY, "mill")
    assert "profile 'mill' changed" in reason
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "s1/m1" in record.getMessage()
    assert "starts fresh" in record.getMessage()


def test_other_river_version_is_set_aside(
    store: CheckpointStore,
    checkpoint_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A checkpoint saved by another river version loads None and is set aside with a reason."""
    model = _model()
    fp = fingerprint(model.profile)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "RIVER_VERSION", "0.0.1")
        store.save([(KEY, model, fp)])
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        assert store.load(KEY, fp) is None
    [(*_, reason)] = _set_aside(checkpoint_path)
    assert f"saved with river 0.0.1, running {checkpoints.RIVER_VERSION}" == reason
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert store.count() == 0


@pytest.mark.parametrize(
    ("blob", "needle"),
    [
        (b"\x80\x05not a pickle", "cannot be loaded"),
        (pickle.dumps({"not": "a model"}), "holds a dict, not an asset model"),
    ],
    ids=["corrupt", "foreign"],
)
def test_unloadable_blob_is_set_aside(
    store: CheckpointStore,
    checkpoint_path: Path,
    caplog: pytest.LogCaptureFixture,
    blob: bytes,
    needle: str,
) -> None:
    """A corrupt or foreign blob loads None, is set aside with the reason and logs a warning."""
    model = _model()
    fp = fingerprint(model.profile)
    store.save([(KEY, model, fp)])
    _corrupt(checkpoint_path, blob)
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        assert store.load(KEY, fp) is None
    [(*_, reason)] = _set_aside(checkpoint_path)
    assert needle in reason
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_set_aside_checkpoint_is_not_offered_again(
    store: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Once set aside, the asset has no checkpoint: the next load is a quiet None."""
    model = _model()
    store.save([(KEY, model, "f" * 16)])
    store.load(KEY, fingerprint(model.profile))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        assert store.load(KEY, fingerprint(model.profile)) is None
    assert caplog.records == []


def test_save_many_models_at_once(store: CheckpointStore) -> None:
    """Saving many models is one call that reports how many it saved."""
    model = _model()
    fp = fingerprint(model.profile)
    assert store.save([((f"s{i}", "m"), model, fp) for i in range(25)]) == 25
    assert store.count() == 25
