"""The scoring step of the pipeline: one ``anomaly`` point per accepted reading.

Plugs into ingest as a `Processor`: each batch of readings is scored (and learned from) once,
and the points are committed in the same transaction as the readings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingest.base import FieldValue, Point, Reading
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

    def process(self, readings: Sequence[Reading], derived: Sequence[Point] = ()) -> list[Point]:
        """One anomaly point per reading, in order."""
        points = []
        registry = self.registry
        key: tuple[str, str] | None = None
        tags: dict[str, str] = {}
        for r in readings:
            try:
                if key != (r.site, r.asset):
                    # A batched message is a run of one asset's readings: look it up once.
                    key = (r.site, r.asset)
                    model = registry.get(r.site, r.asset, r.kind)
                    # Every reading moves the model (filters, persistence, last timestamp),
                    # learned or not: an evicted model must be saved as it is now.
                    registry.touched(r.site, r.asset)
                    tags = {"site": r.site, "asset": r.asset, "detector": model.profile.name}
                verdict = model.process(r.ts, r.metrics)
            except Exception:  # one asset's broken model must not cost the others their scores
                key = None
                self._log.error(
                    f"{r.site}/{r.asset}",
                    "scoring %s/%s failed; stored unscored",
                    r.site,
                    r.asset,
                    exc_info=True,
                )
                self.failures += 1
                continue
            fields: dict[str, FieldValue] = {
                "score": verdict.score,
                "threshold": verdict.threshold,
                "anomalous": verdict.anomalous,
                "top_metric": verdict.top_metric,
                "warming_up": verdict.warming_up,
            }
            points.append(Point("anomaly", tags, fields, r.ts))
        registry.maybe_checkpoint()
        return points

    def tick(self) -> list[Point]:
        """Scores come only from readings."""
        return []

    def committed(self) -> None:
        """Checkpoints keep their own schedule (a model skips readings it already learned)."""

    def close(self) -> None:
        """Save every model that learned since the last checkpoint, close the checkpoints."""
        self.registry.close()
