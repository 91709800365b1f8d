"""Detection quality on SKAB with the shipped default profile (skipped without the data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.datasets import read_skab
from models.evaluation import Confusion, evaluate
from models.settings import ModelsSettings

SKAB = Path(__file__).parents[3] / "shared" / "data" / "skab"
FOLDERS = ("valve1", "valve2", "other")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SKAB / "valve1").is_dir(), reason=f"SKAB data not found at {SKAB}"),
]


def test_default_profile_beats_the_skab_leaderboard() -> None:
    """Over the 34 labelled files (SKAB's protocol): F1 above 0.78 with FAR at most 13.55 %."""
    profile = next(p for p in ModelsSettings().profiles if p.name == "default")
    files = sorted(f for folder in FOLDERS for f in (SKAB / folder).glob("*.csv"))
    assert len(files) == 34
    total = sum((evaluate(read_skab(f), profile, 400).confusion for f in files), Confusion())
    assert total.f1 > 0.78
    assert total.far <= 13.55
