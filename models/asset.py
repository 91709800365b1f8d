"""One asset's model: detectors, calibration, threshold, persistence and learning policy.

The same object scores the live stream (`models.scoring`) and labelled files
(`models.evaluation`), so what is measured offline is what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from models.base import Verdict
from models.calibration import Calibrator
from models.detectors import Features, RobustZ, build_detector
from models.settings import ProfileSettings


class AssetModel:
    """Scores an asset's readings in time order and learns its normal behaviour.

    Each reading is scored by every detector of the profile, calibrated against the asset's
    recent normal scores, and compared with the calibrated threshold. A reading is anomalous
    when at least ``min_hits`` of the last ``window`` readings crossed it. Readings that crossed
    it (or were flagged) do not teach the model unless the profile says so, and a reading at
    or before the last learned timestamp is scored but not learned again.

    Parameters
    ----------
    profile
        The detector profile.

    Examples
    --------
    >>> import random
    >>> from models.settings import ProfileSettings
    >>> rng = random.Random(0)
    >>> model = AssetModel(ProfileSettings(name="p", warmup=200, window=3, min_hits=2))
    >>> normal = [{"temp": 60 + rng.gauss(0, 1), "rpm": 1500 + rng.gauss(0, 10)}
    ...           for _ in range(300)]
    >>> verdicts = [model.process(ts, x) for ts, x in enumerate(normal)]
    >>> verdicts[0].warming_up, any(v.anomalous for v in verdicts)
    (True, False)
    >>> hot = [model.process(300 + i, {"temp": 75.0, "rpm": 1500.0}) for i in range(3)]
    >>> [v.anomalous for v in hot], hot[-1].top_metric
    ([False, True, True], 'temp')
    """

    def __init__(self, profile: ProfileSettings) -> None:
        self.profile = profile
        self.detectors = [build_detector(spec, profile.name) for spec in profile.detectors]
        # Keep the later half of the warm-up's scores: the first ones come from a model that
        # has hardly learned anything and would inflate the threshold.
        capacity = max(50, profile.warmup // 2)
        self.calibrators = [Calibrator(capacity) for _ in self.detectors]
        self.explainer = RobustZ()
        self.learned = 0
        self.last_learned_ts = -1
        self._hits: list[bool] = []

    @property
    def warming_up(self) -> bool:
        """True until the profile's warm-up number of readings was learned."""
        return self.learned < self.profile.warmup

    def process(self, ts: int, metrics: Mapping[str, float]) -> Verdict:
        """Score one reading, decide, and learn from it when the policy allows."""
        profile = self.profile
        if profile.metrics:
            metrics = {m: metrics[m] for m in profile.metrics if m in metrics}
        x = cast(Features, metrics)
        warming_up = self.warming_up
        raws = [detector.score_one(x) for detector in self.detectors]
        # With several detectors, the one furthest over (or least under) its threshold speaks.
        score, threshold = max(
            (
                (c.percentile(raw), c.threshold(profile.quantile, profile.margin))
                for raw, c in zip(raws, self.calibrators, strict=True)
            ),
            key=lambda st: st[0] - st[1],
        )
        hit = score > threshold and not warming_up
        self._hits.append(hit)
        if len(self._hits) > profile.window:
            del self._hits[0]
        anomalous = not warming_up and sum(self._hits) >= profile.min_hits
        normal = warming_up or profile.learn_anomalous or not (hit or anomalous)
        if normal and ts > self.last_learned_ts:
            for detector, calibrator, raw in zip(
                self.detectors, self.calibrators, raws, strict=True
            ):
                detector.learn_one(x)
                calibrator.update(raw)
            self.explainer.learn_one(x)
            self.learned += 1
            self.last_learned_ts = ts
        return Verdict(score, threshold, anomalous, warming_up, self.explainer.worst(x))
