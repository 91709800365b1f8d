"""A duty-cycled machine whose load swings smoothly: a fault inside the load-driven range.

The default profile (operating states) against the control chart, for load cycles of 2, 5
and 10 minutes; the misses are strict xfails naming the known limit.
"""

from __future__ import annotations

import math
import random

import pytest
from modelkit import ts

from models.asset import AssetModel
from models.settings import DetectorSpec, ProfileSettings

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
