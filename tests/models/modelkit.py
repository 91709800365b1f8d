"""Seeded telemetry of a CNC mill, and the detector specs every models test runs over.

A healthy mill sits at its operating point with Gaussian noise of a known spread per metric,
so a deviation can be stated in that metric's standard deviations ("sigmas").
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Mapping
from typing import Any, get_args

import pytest

from ingest.base import Reading
from models.asset import AssetModel
from models.base import Verdict
from models.checkpoints import Checkpoints
from models.profiles import fingerprint
from models.settings import DetectorSpec, DetectorType, ProfileSettings

SECOND = 1_000_000_000
# 2026-11-24T12:00:00Z, the docs/design.md §2 example reading's second.
T0 = 1_795_521_600 * SECOND

#: Metric -> (operating point, standard deviation) of a healthy mill.
NORMAL: dict[str, tuple[float, float]] = {
    "spindle_temp_c": (61.0, 1.0),
    "vibration_rms": (0.41, 0.02),
    "spindle_rpm": (1500.0, 10.0),
}
METRICS = tuple(NORMAL)

# Extra constructor parameters that make a detector type reproducible.
_SEEDED: dict[str, dict[str, Any]] = {"half_space_trees": {"seed": 3}}

#: Every detector type the settings accept (new types join automatically), the README's
#: slowly adapting control chart, and an ensemble, as (id, detectors) for a profile.
SPECS: dict[str, tuple[DetectorSpec, ...]] = {
    **{
        kind: (DetectorSpec(type=kind, params=_SEEDED.get(kind, {})),)
        for kind in get_args(DetectorType)
    },
    "control_chart-adapt": (
        DetectorSpec(type="control_chart", params={"adapt": 0.005, "guard": 1.0}),
    ),
    "ensemble": (DetectorSpec(type="control_chart"), DetectorSpec(type="zscore")),
}


def spec_params(xfail: Mapping[str, str] | None = None, *extra: str) -> list[Any]:
    """`SPECS` ids (followed by `extra` values) for `pytest.mark.parametrize`.

    The specs named in `xfail` get a strict xfail with the given reason.
    """
    xfail = xfail or {}
    return [
        pytest.param(
            name,
            *extra,
            id="-".join([name, *extra]),
            marks=[pytest.mark.xfail(strict=True, reason=xfail[name])] if name in xfail else [],
        )
        for name in SPECS
    ]


def profile(spec: str = "control_chart", **overrides: Any) -> ProfileSettings:
    """A profile named ``mill`` over the detectors of ``SPECS[spec]``."""
    return ProfileSettings(name="mill", detectors=SPECS[spec], **overrides)


class Clock:
    """Monotonic seconds that move only when a test says so (for `ModelRegistry`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on."""
        self.now += seconds


def ts(i: int) -> int:
    """The timestamp (ns) of the i-th reading of a one-per-second stream."""
    return T0 + i * SECOND


def healthy(rng: random.Random, *, spread: float = 1.0, shift: float = 0.0) -> dict[str, float]:
    """A healthy reading; `spread` scales the noise, `shift` moves every metric (in sigmas)."""
    return {
        name: mean + shift * sd + spread * sd * rng.gauss(0.0, 1.0)
        for name, (mean, sd) in NORMAL.items()
    }


def deviated(rng: random.Random, metric: str, sigmas: float) -> dict[str, float]:
    """A healthy reading with `metric` moved by `sigmas` of its standard deviation."""
    reading = healthy(rng)
    reading[metric] += sigmas * NORMAL[metric][1]
    return reading


def at_operating_point(metric: str = METRICS[0], sigmas: float = 0.0) -> dict[str, float]:
    """A noise-free reading at the operating point, with `metric` moved by `sigmas`."""
    reading = {name: mean for name, (mean, _) in NORMAL.items()}
    reading[metric] += sigmas * NORMAL[metric][1]
    return reading


def feed(model: AssetModel, readings: Iterable[Mapping[str, float]], start: int) -> list[Verdict]:
    """Process readings at ts(start), ts(start + 1), ... and return the verdicts."""
    return [model.process(ts(start + i), x) for i, x in enumerate(readings)]


def trained(prof: ProfileSettings, *, seed: int = 1, extra: int = 100) -> AssetModel:
    """A model that learned its warm-up and `extra` healthy readings (ts 0 ..)."""
    rng = random.Random(seed)
    model = AssetModel(prof)
    feed(model, (healthy(rng) for _ in range(prof.warmup + extra)), 0)
    return model


def next_index(model: AssetModel) -> int:
    """The index of the reading after the last one the model processed."""
    return (model.last_ts - T0) // SECOND + 1


def probe(model: AssetModel, readings: Iterable[Mapping[str, float]]) -> list[Verdict]:
    """Verdicts of readings that follow the model's last one, on a copy (the model is kept)."""
    clone = copy.deepcopy(model)
    return feed(clone, readings, next_index(model))


def probe_each(model: AssetModel, readings: Iterable[Mapping[str, float]]) -> list[Verdict]:
    """The verdict of each reading as the next one, each on its own copy of the model."""
    return [probe(model, [x])[0] for x in readings]


def reading(
    asset: str, i: int, metrics: Mapping[str, float], kind: str | None = "cnc-mill"
) -> Reading:
    """A `Reading` of asset `asset` at site ``s1`` and ts(i)."""
    return Reading("s1", asset, kind, ts(i), dict(metrics))


def checkpoint_probes() -> list[dict[str, float]]:
    """Healthy and deviated readings that tell whether a restored model is the saved one."""
    rng = random.Random(51)
    return [healthy(rng) for _ in range(30)] + [deviated(rng, "spindle_temp_c", 9)] * 10


def saving_again_replaces(store: Checkpoints, model: AssetModel) -> None:
    """Assert what every checkpoint store does: saving an asset again keeps one row, the newer.

    ``model`` is a trained model, saved under ``("s1", "m1")``.
    """
    key = ("s1", "m1")
    fp = fingerprint(model.profile)
    store.save([(key, model, fp)])
    rng = random.Random(52)
    learned = model.learned
    for i in range(5):
        model.process(model.last_ts + 1 + i, healthy(rng))
    store.save([(key, model, fp)])
    loaded = store.load(key, fp)
    assert store.count() == 1
    assert loaded is not None
    assert loaded.learned == learned + 5
