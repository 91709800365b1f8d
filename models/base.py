"""What the models package promises: the detector contract, and one verdict per reading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from river.base.typing import FeatureName

from ingest.base import FieldValue, Point

# river's own signature: a reading's features are a dict of hashable names to values.
Features = dict[FeatureName, Any]


@runtime_checkable
class Detector(Protocol):
    """An anomaly detector of one asset, in river's vocabulary, with a calibrated score.

    The score scale is the same for every detector and every asset: in [0, 1), 0.5 is the
    asset's own threshold, 0 means "like the normal learned" (and every score is 0 until the
    detector is `ready`), and the score nears 1 as the reading moves ever further past the
    threshold. `models.build.build_detector` makes one from a profile's spec.

    Which call changes what: `score_one` is called exactly once per reading, in time order,
    and *may change state* (filters advance with the reading, a warm-up collects its scores,
    caches refresh), so a reading scored out of order is scored on a copy of the detector
    (`models.asset.AssetModel` does, for replays). `learn_one` is called after `score_one` of
    the same reading, only for readings the asset's model accepts as normal, and may read
    what that `score_one` left (the last score). `learn_normal` teaches readings that were
    scored and flagged, then called normal by maintenance staff.

    Examples
    --------
    >>> import random
    >>> from models.build import build_detector
    >>> from models.settings import DetectorSpec, ProfileSettings
    >>> rng = random.Random(7)
    >>> profile = ProfileSettings(name="p", warmup=200)
    >>> detector = build_detector(DetectorSpec(type="control_chart"), profile)
    >>> isinstance(detector, Detector)
    True
    >>> for _ in range(200):
    ...     x = {"temp": rng.gauss(60, 1), "current": rng.gauss(10, 0.1)}
    ...     _ = detector.score_one(x)
    ...     detector.learn_one(x)
    >>> detector.ready, detector.score_one({"temp": 60.0, "current": 10.0}) < 0.5
    (True, True)
    >>> hot = [detector.score_one({"temp": 75.0, "current": 10.0}) for _ in range(20)]
    >>> hot[-1] > 0.5, detector.top_metric
    (True, 'temp')
    """

    @property
    def ready(self) -> bool:
        """True once the warm-up is done and scores count (until then every score is 0)."""

    @property
    def top_metric(self) -> str:
        """The metric that drove the last score ('' when the detector cannot tell)."""

    def learn_one(self, x: Features) -> None:
        """Learn a reading as normal (after its `score_one`): it changes the detector."""

    def score_one(self, x: Features) -> float:
        """Score a reading in [0, 1), 0.5 at the threshold; it may advance the detector."""

    def learn_normal(self, rows: Sequence[Features]) -> None:
        """Learn readings that maintenance staff called normal (a false alarm's episode)."""


@dataclass(slots=True)
class Verdict:
    """An asset model's judgement of one reading (the ``anomaly`` measurement's fields).

    `score` and `threshold` are calibrated to [0, 1] against the asset's own normal
    readings; `anomalous` needs the threshold crossed persistently and is never set while
    `warming_up`; `top_metric` is the metric furthest from the asset's normal.

    Not frozen, though never changed once made: one is made per reading (see
    `ingest.base.Reading`). Asset models keep their last verdicts, so checkpoints hold
    some: they are pickled as they were while this class was frozen, a list of the fields
    in order, and checkpoints of either version load in the other.

    Examples
    --------
    >>> import pickle
    >>> verdict = Verdict(0.7, 0.5, True, False, "temp")
    >>> verdict.__getstate__()
    [0.7, 0.5, True, False, 'temp']
    >>> pickle.loads(pickle.dumps(verdict)) == verdict
    True
    """

    score: float
    threshold: float
    anomalous: bool
    warming_up: bool
    top_metric: str

    def __getstate__(self) -> list[object]:
        return [self.score, self.threshold, self.anomalous, self.warming_up, self.top_metric]

    def __setstate__(self, state: list[Any]) -> None:
        self.score, self.threshold, self.anomalous, self.warming_up, self.top_metric = state


@dataclass(slots=True)
class AnomalyPoint(Point):
    """An ``anomaly`` point, stored as its fields, that hands its `Verdict` on to alerting.

    Not frozen, like `Point`.

    Examples
    --------
    >>> point = AnomalyPoint.of(Verdict(0.7, 0.5, True, False, "temp"), {"site": "s1"}, 9)
    >>> point.measurement, list(point.fields), point.verdict.anomalous
    ('anomaly', ['score', 'threshold', 'anomalous', 'top_metric', 'warming_up'], True)
    """

    verdict: Verdict

    @classmethod
    def of(cls, verdict: Verdict, tags: Mapping[str, str], ts: int) -> AnomalyPoint:
        """The point of `verdict`, its fields in the order the store has always had them."""
        fields: dict[str, FieldValue] = {
            "score": verdict.score,
            "threshold": verdict.threshold,
            "anomalous": verdict.anomalous,
            "top_metric": verdict.top_metric,
            "warming_up": verdict.warming_up,
        }
        return cls("anomaly", tags, fields, ts, verdict)
