"""Detectors: river components behind one contract, built from a profile's spec.

Each detector is a river anomaly detector (``learn_one(x)``, ``score_one(x)``, a higher score
is more anomalous) over a dict of metrics. Raw scores are not comparable between detectors;
`models.calibration` turns them into [0, 1] against the asset's own normal scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from river import base, stats
from river.base.typing import FeatureName

from models.base import Features


class Mahalanobis(base.AnomalyDetector):
    """Squared Mahalanobis distance (Hotelling's T²) from the asset's normal operating point.

    Mean and covariance are learned online (Welford), with shrinkage towards the diagonal so
    that few readings or collinear sensors (current and power, say) still give a stable
    inverse. The inverse is refreshed every `refresh` learned readings, which keeps the cost
    per reading to a matrix-vector product. Machines move together: a pump whose pressure
    stays normal while its flow drops is far from normal even though neither metric alone is.

    Parameters
    ----------
    shrinkage
        Weight of the diagonal target in the covariance estimate, in [0, 1].
    refresh
        Learned readings between two inversions of the covariance.
    forget
        Exponential forgetting after `horizon` readings: the model follows slow, normal
        drift (seasons, wear-in) with a memory of about `horizon` readings.
    horizon
        Readings the model remembers once forgetting starts.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> model = Mahalanobis()
    >>> for _ in range(500):
    ...     a = rng.gauss(0, 1)
    ...     model.learn_one({"flow": a, "pressure": a + rng.gauss(0, 0.1)})
    >>> model.score_one({"flow": 1.0, "pressure": 1.0}) < 5
    True
    >>> model.score_one({"flow": 1.0, "pressure": -1.0}) > 30
    True
    """

    def __init__(self, shrinkage: float = 0.05, refresh: int = 32, horizon: int = 2000) -> None:
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        self.shrinkage = shrinkage
        self.refresh = refresh
        self.horizon = horizon
        self.names: list[FeatureName] = []
        self.n = 0.0
        self.mean = np.zeros(0)
        self.m2 = np.zeros((0, 0))
        self._inverse: np.ndarray | None = None
        self._since_refresh = 0

    def _vector(self, x: Features) -> np.ndarray:
        for name in x:
            if name not in self.names:
                self._grow(name)
        # A metric missing from this reading counts as normal (at its mean).
        return np.array([x.get(name, m) for name, m in zip(self.names, self.mean, strict=True)])

    def _grow(self, name: FeatureName) -> None:
        self.names.append(name)
        self.mean = np.append(self.mean, 0.0)
        size = len(self.names)
        m2 = np.zeros((size, size))
        m2[: size - 1, : size - 1] = self.m2
        self.m2 = m2
        self._inverse = None

    def learn_one(self, x: Features) -> None:
        """Update mean and covariance with a normal reading."""
        v = self._vector(x)
        # Beyond the horizon, old readings weigh less: n stops growing.
        self.n = min(self.n + 1.0, float(self.horizon))
        delta = v - self.mean
        self.mean = self.mean + delta / self.n
        self.m2 = self.m2 * ((self.n - 1) / self.n if self.n >= self.horizon else 1.0)
        self.m2 = self.m2 + np.outer(delta, v - self.mean)
        self._since_refresh += 1
        if self._since_refresh >= self.refresh:
            self._inverse = None

    def _covariance_inverse(self) -> np.ndarray:
        if self._inverse is None:
            size = len(self.names)
            cov = self.m2 / max(self.n - 1.0, 1.0)
            # Shrink towards the diagonal; a floor keeps constant sensors from dividing by 0.
            diag = np.diag(np.maximum(np.diag(cov), 1e-12 + 1e-6 * np.abs(self.mean) ** 2))
            target = (1 - self.shrinkage) * cov + self.shrinkage * diag
            target[np.diag_indices(size)] = np.diag(diag)
            self._inverse = np.linalg.pinv(target, hermitian=True)
            self._since_refresh = 0
        return self._inverse

    def score_one(self, x: Features) -> float:
        """T² of the reading; 0 before anything was learned."""
        if self.n < 2:
            return 0.0
        d = self._vector(x) - self.mean
        return float(d @ self._covariance_inverse() @ d)


class ZScore(base.AnomalyDetector):
    """The largest per-metric z-score against exponentially weighted mean and variance.

    Cheap and explainable, blind to relations between metrics.

    Examples
    --------
    >>> model = ZScore(fading_factor=0.1)
    >>> for i in range(100):
    ...     model.learn_one({"temp": 60.0 + (i % 5) * 0.1})
    >>> round(model.score_one({"temp": 60.2}), 1), model.score_one({"temp": 70.0}) > 50
    (0.1, True)
    """

    def __init__(self, fading_factor: float = 0.01) -> None:
        self.fading_factor = fading_factor
        self.means: dict[FeatureName, stats.EWMean] = {}
        self.variances: dict[FeatureName, stats.EWVar] = {}

    def learn_one(self, x: Features) -> None:
        """Update each metric's mean and variance."""
        for name, value in x.items():
            if name not in self.means:
                self.means[name] = stats.EWMean(self.fading_factor)
                self.variances[name] = stats.EWVar(self.fading_factor)
            self.means[name].update(value)
            self.variances[name].update(value)

    def zscores(self, x: Features) -> dict[FeatureName, float]:
        """|z| of each metric the model knows."""
        out: dict[FeatureName, float] = {}
        for name, value in x.items():
            if name in self.means:
                spread = math.sqrt(self.variances[name].get()) or 1e-9
                out[name] = abs(value - self.means[name].get()) / spread
        return out

    def score_one(self, x: Features) -> float:
        """Max |z| over the reading's metrics."""
        return max(self.zscores(x).values(), default=0.0)

    def worst(self, x: Features) -> str:
        """The metric furthest from its normal, in standard deviations ('' if none known)."""
        z = self.zscores(x)
        return str(max(z, key=z.__getitem__)) if z else ""


# river's anomaly and preprocessing modules pull in scipy (~0.8 s of every start): they are
# imported by `prepare` when a profile names a detector built on them, not by every pipeline.
def _half_space_trees(params: dict[str, Any]) -> base.Estimator:
    from river import anomaly, compose, preprocessing

    # HalfSpaceTrees wants features in [0, 1]: min-max scale them first.
    return compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(**params))


def _one_class_svm(params: dict[str, Any]) -> base.Estimator:
    from river import anomaly, compose, preprocessing

    return compose.Pipeline(preprocessing.StandardScaler(), anomaly.OneClassSVM(**params))


#: Detector types built on river's anomaly module (and scipy, through preprocessing).
_ON_RIVER_ANOMALY = frozenset({"half_space_trees", "one_class_svm"})


def prepare(types: Iterable[str]) -> None:
    """Import now what detectors of these types need, so no asset's first reading waits for it.

    Examples
    --------
    >>> import sys
    >>> prepare(["operating_states"])
    >>> prepare(["half_space_trees"]); "river.anomaly" in sys.modules
    True
    """
    if _ON_RIVER_ANOMALY.intersection(types):
        from river import anomaly, compose, preprocessing  # noqa: F401


#: River detectors by profile type name (the control chart is built separately).
RIVER_DETECTORS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "mahalanobis": lambda params: Mahalanobis(**params),
    "zscore": lambda params: ZScore(**params),
    "half_space_trees": _half_space_trees,
    "one_class_svm": _one_class_svm,
}
