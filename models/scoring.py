"""The scoring step of the pipeline: one ``anomaly`` point per accepted reading.

Plugs into ingest as a `Processor`: each batch of readings is scored (and learned from) once,
and the points are committed in the same transaction as the readings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingest.base import Point, Reading
from ingest.logthrottle import ThrottledLog
from models.registry import ModelRegistry

log = logging.getLogger(__name__)


class ScoringProcessor:
    """Scores readings with their asset's model and returns DESIGN.md ``anomaly`` points.

    Parameters
    ----------
    registry
        The per-asset models.
    """

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.failures = 0
        self._log = ThrottledLog(log, interval=60.0)

    def process(self, readings: Sequence[Reading]) -> list[Point]:
        """One anomaly point per reading, in order."""
        points = []
        registry = self.registry
        for r in readings:
            try:
                model = registry.get(r.site, r.asset, r.kind)
                verdict = model.process(r.ts, r.metrics)
            except Exception:  # one asset's broken model must not cost the others their scores
                self._log.error(
                    f"{r.site}/{r.asset}",
                    "scoring %s/%s failed; stored unscored",
                    r.site,
                    r.asset,
                    exc_info=True,
                )
                self.failures += 1
                continue
            # Every reading moves the model (filters, persistence, last timestamp), learned
            # or not: an evicted model must be saved as it is now.
            registry.touched(r.site, r.asset)
            points.append(
                Point(
                    "anomaly",
                    {"site": r.site, "asset": r.asset, "detector": model.profile.name},
                    {
                        "score": verdict.score,
                        "threshold": verdict.threshold,
                        "anomalous": verdict.anomalous,
                        "top_metric": verdict.top_metric,
                        "warming_up": verdict.warming_up,
                    },
                    r.ts,
                )
            )
        registry.maybe_checkpoint()
        return points

    def close(self) -> None:
        """Save every model that learned since the last checkpoint, close the checkpoints."""
        self.registry.close()
