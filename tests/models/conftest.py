"""Fixtures of the models tests: a real SQLite checkpoint file and a hand-driven clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from modelkit import Clock

from models.checkpoints import CheckpointStore


@pytest.fixture
def clock() -> Clock:
    """A clock to inject into `ModelRegistry`."""
    return Clock()


@pytest.fixture
def checkpoint_path(tmp_path: Path) -> Path:
    """Where this test's models are checkpointed."""
    return tmp_path / "data" / "models.db"


@pytest.fixture
def store(checkpoint_path: Path) -> Iterator[CheckpointStore]:
    """A checkpoint store on a fresh SQLite file, closed after the test."""
    checkpoints = CheckpointStore(checkpoint_path)
    yield checkpoints
    checkpoints.close()
