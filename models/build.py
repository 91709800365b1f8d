"""Detectors built from a profile, all scoring in [0, 1) with 0.5 at the asset's threshold."""

from __future__ import annotations

from models.base import Detector
from models.calibration import Calibrated
from models.controlchart import ControlChart
from models.detectors import RIVER_DETECTORS
from models.errors import ProfileError
from models.operating import OperatingStates
from models.settings import DetectorSpec, ProfileSettings


def build_detector(spec: DetectorSpec, profile: ProfileSettings) -> Detector:
    """A fresh detector for `spec`, scoring in [0, 1) with 0.5 at the asset's threshold.

    The operating-state model and the control chart calibrate themselves; other river
    detectors are wrapped in `models.calibration.Calibrated`. Raises `ProfileError` naming
    the profile on bad params.
    """
    params = dict(spec.params)
    try:
        if spec.type == "operating_states":
            params.setdefault("warmup", profile.warmup)
            return OperatingStates(**params)
        if spec.type == "control_chart":
            params.setdefault("warmup", profile.warmup)
            params.setdefault("split", params["warmup"] * 3 // 4)
            return ControlChart(**params)
        return Calibrated(
            RIVER_DETECTORS[spec.type](params), profile.warmup, profile.quantile, profile.margin
        )
    except (TypeError, ValueError) as exc:
        raise ProfileError(profile.name, f"detector {spec.type}: {exc}") from None
