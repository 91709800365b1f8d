"""Unit tests of `models.controlchart.ControlChart`: its parameters and when it is ready."""

from __future__ import annotations

import pytest

from models.asset import AssetModel
from models.controlchart import ControlChart
from models.errors import ProfileError
from models.settings import DetectorSpec, ProfileSettings


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


def test_chart_ready_only_after_its_fit() -> None:
    """The chart is ready once its warm-up is fitted, not before."""
    chart = ControlChart(warmup=50, split=40)
    for i in range(49):
        chart.learn_one({"t": float(i % 3)})
    assert not chart.ready
    chart.learn_one({"t": 1.0})
    assert chart.ready
