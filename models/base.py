"""What the models package hands on: one verdict per reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from river.base.typing import FeatureName

# river's own signature: a reading's features are a dict of hashable names to values.
Features = dict[FeatureName, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An asset model's judgement of one reading (the ``anomaly`` measurement's fields).

    `score` and `threshold` are calibrated to [0, 1] against the asset's own normal
    readings; `anomalous` needs the threshold crossed persistently and is never set while
    `warming_up`; `top_metric` is the metric furthest from the asset's normal.
    """

    score: float
    threshold: float
    anomalous: bool
    warming_up: bool
    top_metric: str
