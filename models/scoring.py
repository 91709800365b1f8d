"""The scoring step of the pipeline: one ``anomaly`` point per accepted reading.

Plugs into ingest as a `Processor`: each batch of readings is scored (and learned from) once,
and the points are committed in the same transaction as the readings. Before each batch and
on each tick it applies what maintenance staff asked of the models (`models.feedback`), so
those changes happen on this thread, the only one that touches a model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingest.base import Point, Reading
from ingest.logthrottle import ThrottledLog
from models.base import AnomalyPoint
from models.feedback import FeedbackLog
from models.registry import ModelRegistry

log = logging.getLogger(__name__)


class ScoringProcessor:
    """Scores readings with their asset's model and returns docs/design.md §5 ``anomaly`` points.

    Parameters
    ----------
    registry
        The per-asset models.
    feedback
        Teachings and resets asked by maintenance staff, applied before the next batch
        (the wiring closes it, after the commands have stopped).
    """

    def __init__(self, registry: ModelRegistry, feedback: FeedbackLog | None = None) -> None:
        self.registry = registry
        self.feedback = feedback
        self.failures = 0
        self._log = ThrottledLog(log, interval=60.0)

    def process(self, readings: Sequence[Reading], derived: Sequence[Point] = ()) -> list[Point]:
        """One anomaly point per reading, in order."""
        if self.feedback is not None and self.feedback.waiting:
            self._apply_feedback(self.feedback)
        points: list[Point] = []
        point = AnomalyPoint.of
        registry = self.registry
        site: str | None = None  # the asset of the model in hand; None: none in hand
        asset = ""
        tags: dict[str, str] = {}
        for r in readings:
            try:
                if r.asset != asset or r.site != site:
                    # A batched message is a run of one asset's readings: look it up once.
                    site, asset = r.site, r.asset
                    model = registry.get(site, asset, r.kind)
                    # Every reading moves the model (filters, persistence, last timestamp),
                    # learned or not: an evicted model must be saved as it is now.
                    registry.touched(site, asset)
                    tags = {"site": site, "asset": asset, "detector": model.profile.name}
                verdict = model.process(r.ts, r.metrics)
            except Exception:  # one asset's broken model must not cost the others their scores
                site = None
                self._log.error(
                    f"{r.site}/{r.asset}",
                    "scoring %s/%s failed; stored unscored",
                    r.site,
                    r.asset,
                    exc_info=True,
                )
                self.failures += 1
                continue
            points.append(point(verdict, tags, r.ts))
        registry.maybe_checkpoint()
        return points

    def tick(self) -> list[Point]:
        """Apply pending teachings and resets, and checkpoints that fell due while idle.

        Scores come only from readings. Saving here too means a model that stopped learning
        is saved within an interval, not at the next batch: in a cluster another instance
        may be the one to take its asset on (docs/design.md §10).
        """
        if self.feedback is not None and self.feedback.waiting:
            self._apply_feedback(self.feedback)
        self.registry.maybe_checkpoint()
        return []

    def _apply_feedback(self, feedback: FeedbackLog) -> None:
        """Apply the pending changes; a failure leaves them pending for the next batch."""
        feedback.taken()  # a change recorded from now on pokes again
        try:
            changes = feedback.pending()
            if changes:
                self.registry.apply(changes)
        except Exception:  # the readings are scored all the same; the changes wait
            feedback.poke()
            self._log.error("feedback", "applying feedback to the models failed", exc_info=True)

    def committed(self) -> None:
        """Checkpoints keep their own schedule (a model skips readings it already learned)."""

    def close(self) -> None:
        """Save every model that learned since the last checkpoint, close the checkpoints."""
        self.registry.close()
