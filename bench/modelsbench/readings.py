"""Synthetic readings for the per-model measurements: correlated, stationary, seeded.

Every metric is its operating level plus a share of one common load factor plus its own
noise, as on a machine where temperature, power and current rise and fall together with the
load. The load is an AR(1) process (coefficient 0.9), so it wanders over tens of readings
but the warm-up sees its whole range: after warm-up few readings are flagged, and nearly
every reading is learned as it would be on a healthy machine.
"""

from __future__ import annotations

import math
import random

#: Metric names in the order a reading of ``width`` metrics takes them (the first ``width``).
METRICS = (
    "vibration_rms",
    "spindle_temp_c",
    "spindle_rpm",
    "power_kw",
    "coolant_temp_c",
    "feed_rate_mm_min",
    "current_a",
    "oil_pressure_bar",
)
#: Operating level and standard deviation of each metric.
_LEVELS = (
    (0.35, 0.03),
    (58.0, 1.5),
    (8000.0, 120.0),
    (4.2, 0.3),
    (24.0, 0.8),
    (1200.0, 40.0),
    (11.0, 0.6),
    (3.1, 0.08),
)
#: Correlation of each metric with the load factor.
_LOADINGS = (0.5, 0.7, 0.8, 0.9, 0.6, 0.8, 0.9, -0.4)
#: AR(1) coefficient of the load factor.
_PHI = 0.9


def readings(width: int, count: int, seed: int) -> list[dict[str, float]]:
    """Return ``count`` readings of ``width`` metrics, the same for the same arguments.

    Parameters
    ----------
    width : int
        Metrics per reading, 1 to 8.
    count : int
        Number of readings.
    seed : int
        Seed of the random stream.

    Returns
    -------
    list of dict of str to float
        One ``{metric: value}`` dict per reading, in time order.

    Examples
    --------
    >>> xs = readings(4, 2, seed=1)
    >>> list(xs[0]), xs == readings(4, 2, seed=1)
    (['vibration_rms', 'spindle_temp_c', 'spindle_rpm', 'power_kw'], True)
    """
    if not 1 <= width <= len(METRICS):
        raise ValueError(f"width must be 1 to {len(METRICS)}, got {width}")
    rng = random.Random(seed)
    gauss = rng.gauss
    columns = [
        (name, level, scale * loading, scale * math.sqrt(1 - loading * loading))
        for name, (level, scale), loading in zip(
            METRICS[:width], _LEVELS[:width], _LOADINGS[:width], strict=True
        )
    ]
    innovation = math.sqrt(1 - _PHI * _PHI)
    load = 0.0
    out: list[dict[str, float]] = []
    for _ in range(count):
        load = _PHI * load + innovation * gauss(0.0, 1.0)
        out.append(
            {
                name: round(level + shared * load + own * gauss(0.0, 1.0), 4)
                for name, level, shared, own in columns
            }
        )
    return out
