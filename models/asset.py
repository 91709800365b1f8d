"""One asset's model: detectors, threshold, persistence, explanation and learning policy.

The same object scores the live stream (`models.scoring`) and labelled files
(`models.evaluation`), so what is measured offline is what runs.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from typing import cast

from models.base import Detector, Features, Verdict
from models.build import build_detector
from models.detectors import ZScore
from models.settings import ProfileSettings
from models.thresholded import SelfThresholded

#: Every detector scores in [0, 1) with its asset's threshold at 0.5 (`models.build`).
THRESHOLD = 0.5
# Verdicts kept for redeliveries: mosquitto redelivers in bunches of at most the in-flight
# window, spread over the fleet's assets, so a few per asset cover it (~100 bytes each).
_RECENT = 16
# Flagged readings kept for a verdict of "normal" from maintenance staff (`accept`): the last
# few minutes of an episode at one reading a second, a few KiB per asset while it is flagged.
_QUARANTINE = 256


class AssetModel:
    """Scores an asset's readings in time order and learns its normal behaviour.

    Each reading is scored by the profile's detectors; the highest score speaks. A reading
    is anomalous when at least ``min_hits`` of the last ``window`` readings scored over the
    threshold, and never during the warm-up. Readings over the threshold or flagged do not
    teach the model unless the profile says so. A reading at or before the last one
    processed changes nothing: a redelivery of one of the last 16 readings gets its verdict
    again, an older replay is scored on a copy of the model.

    Parameters
    ----------
    profile
        The detector profile.

    Examples
    --------
    >>> import random
    >>> from models.settings import ProfileSettings
    >>> rng = random.Random(0)
    >>> model = AssetModel(ProfileSettings(name="p", warmup=200))
    >>> def reading(temp):
    ...     return {"temp": temp + rng.gauss(0, 1), "rpm": 1500 + rng.gauss(0, 10)}
    >>> verdicts = [model.process(ts, reading(60)) for ts in range(300)]
    >>> verdicts[0].warming_up, verdicts[-1].warming_up, any(v.anomalous for v in verdicts)
    (True, False, False)
    >>> hot = [model.process(300 + i, reading(75)) for i in range(60)]
    >>> hot[-1].anomalous, hot[-1].top_metric
    (True, 'temp')
    """

    def __init__(self, profile: ProfileSettings) -> None:
        self.profile = profile
        self.detectors: list[Detector] = [
            build_detector(spec, profile) for spec in profile.detectors
        ]
        # Detectors that cannot name the deviating metric get a per-metric z-score explainer.
        self.explainer = (
            None if all(isinstance(d, SelfThresholded) for d in self.detectors) else ZScore()
        )
        self.learned = 0
        self.last_ts = -1
        self._hits: list[bool] = []
        self._recent: dict[int, Verdict] = {}  # the last verdicts, for exact redeliveries
        # Readings not learned because they were flagged: what `accept` teaches.
        self._quarantine: deque[tuple[int, Features]] = deque(maxlen=_QUARANTINE)

    @property
    def warming_up(self) -> bool:
        """True until the warm-up was learned and every detector is ready to score."""
        return self.learned < self.profile.warmup or not all(d.ready for d in self.detectors)

    def process(self, ts: int, metrics: Mapping[str, float]) -> Verdict:
        """Score one reading, decide, and learn from it when the policy allows."""
        profile = self.profile
        if profile.metrics:
            metrics = {m: metrics[m] for m in profile.metrics if m in metrics}
        x = cast(Features, metrics)
        replay = ts <= self.last_ts
        if replay and ts in self._recent:
            # A redelivery of a recent reading: the same verdict, so its record is unchanged.
            return self._recent[ts]
        # Scoring may change a detector (filters advance: see `Detector`): a replay scores
        # on a copy.
        detectors = copy.deepcopy(self.detectors) if replay else self.detectors
        best, score = 0, detectors[0].score_one(x)
        for i in range(1, len(detectors)):  # several detectors: the highest score speaks
            other = detectors[i].score_one(x)
            if other > score:
                best, score = i, other
        warming_up = self.warming_up
        hit = not warming_up and score > THRESHOLD
        recent = self._hits[-(profile.window - 1) :] if profile.window > 1 else []
        anomalous = not warming_up and sum(recent) + hit >= profile.min_hits
        top = self._top_metric(detectors[best], x)
        if not replay:
            self.last_ts = ts
            self._hits = [*recent, hit]
            if warming_up or profile.learn_anomalous or not (hit or anomalous):
                for detector in self.detectors:
                    detector.learn_one(x)
                if self.explainer is not None:
                    self.explainer.learn_one(x)
                self.learned += 1
            else:
                self._quarantine.append((ts, x))
        verdict = Verdict(score, THRESHOLD, anomalous, warming_up, top)
        if not replay:
            self._recent[ts] = verdict
            if len(self._recent) > _RECENT:
                del self._recent[next(iter(self._recent))]
        return verdict

    def accept(self, start_ns: int, end_ns: int) -> int:
        """Teach the model that the readings it flagged from `start_ns` to `end_ns` were normal.

        Maintenance staff's verdict "false alarm" on an alert: the flagged readings kept since
        (the last `_QUARANTINE` of them) are learned as normal, by each detector's
        `learn_normal`. Returns how many were taught.
        """
        rows = [x for ts, x in self._quarantine if start_ns <= ts <= end_ns]
        if not rows:
            return 0
        self._quarantine = deque(
            ((ts, x) for ts, x in self._quarantine if not start_ns <= ts <= end_ns),
            maxlen=_QUARANTINE,
        )
        for detector in self.detectors:
            detector.learn_normal(rows)
        self._hits = []
        return len(rows)

    def _top_metric(self, detector: Detector, x: Features) -> str:
        named = detector.top_metric
        if named or self.explainer is None:
            return named
        return self.explainer.worst(x)
