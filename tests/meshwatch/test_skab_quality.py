"""Detection quality on SKAB with the shipped default profile (skipped without the data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.datasets import read_skab
from models.evaluation import Confusion, evaluate
from models.settings import DetectorSpec, ModelsSettings, ProfileSettings

SKAB = Path(__file__).parents[3] / "shared" / "data" / "skab"
FOLDERS = ("valve1", "valve2", "other")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SKAB / "valve1").is_dir(), reason=f"SKAB data not found at {SKAB}"),
]


def _skab(profile: ProfileSettings) -> Confusion:
    files = sorted(f for folder in FOLDERS for f in (SKAB / folder).glob("*.csv"))
    assert len(files) == 34
    return sum((evaluate(read_skab(f), profile, 400).confusion for f in files), Confusion())


def test_default_profile_matches_the_skab_leaderboard() -> None:
    """The operating-state model over SKAB's 34 files: F1 0.77+ with FAR at most 13.55 %.

    The best offline entry, Conv-AE, scores F1 0.78 at FAR 13.55 %; measured here 0.782 at
    13.29 % (issue 11's goal of 0.85 at 12 % is not reached: see the README, "Detectors").
    """
    profile = next(p for p in ModelsSettings().profiles if p.name == "default")
    total = _skab(profile)
    assert total.f1 > 0.77
    assert total.far <= 13.55


def test_control_chart_beats_the_skab_leaderboard() -> None:
    """The control chart over SKAB's 34 files: F1 above 0.78 with FAR at most 13.55 %."""
    chart = ProfileSettings(name="chart", detectors=(DetectorSpec(type="control_chart"),))
    total = _skab(chart)
    assert total.f1 > 0.78
    assert total.far <= 13.55
