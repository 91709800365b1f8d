"""The alerting step of the pipeline: readings and their scores in, ``alert`` records out.

Plugs into ingest as a `Processor` after the scoring processor, whose ``anomaly`` points
(`models.base.AnomalyPoint`) it reads for each reading's `Verdict`; a reading without one
(models off, a model failed) is judged by the limit and deadman rules only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.base import Observation
from alerts.engine import AlertEngine
from alerts.history.ledger import Ledger
from ingest.base import Point, Reading
from models.base import AnomalyPoint, Verdict


class AlertProcessor:
    """Turns a batch into observations for the `AlertEngine`.

    Parameters
    ----------
    engine
        The alert engine.
    ledger
        Hands the commands' actions and the queued notifications to the store with each
        batch (`alerts.history.ledger`); one of its own by default.
    """

    def __init__(self, engine: AlertEngine, ledger: Ledger | None = None) -> None:
        self.engine = engine
        self.ledger = ledger or Ledger(engine)

    def process(self, readings: Sequence[Reading], derived: Sequence[Point] = ()) -> list[Point]:
        """The ``alert``, ``health``, ``notification`` and ``alert_action`` records of the batch."""
        scores = [p for p in derived if isinstance(p, AnomalyPoint)]
        verdicts: Sequence[Verdict | None]
        if _aligned(scores, readings):
            # The scoring processor's points, one per reading and in order: no lookup needed.
            verdicts = [p.verdict for p in scores]
        else:  # some readings went unscored (a model failed, models are off)
            by_key = {(p.tags["site"], p.tags["asset"], p.ts): p.verdict for p in scores}
            verdicts = [by_key.get((r.site, r.asset, r.ts)) for r in readings]
        observe = Observation
        observations = [
            observe(r.site, r.asset, r.kind, r.ts, r.metrics)
            if v is None
            else observe(
                r.site,
                r.asset,
                r.kind,
                r.ts,
                r.metrics,
                v.score,
                v.anomalous,
                v.top_metric or None,
                v.warming_up,
            )
            for r, v in zip(readings, verdicts, strict=True)
        ]
        engine = self.engine
        with engine.lock:  # no command's save between the batch and the ledger's drain
            return [*engine.observe(observations), *engine.health_points(), *self.ledger.drain()]

    def tick(self) -> list[Point]:
        """The records that passing time caused (assets that went silent), and the actions."""
        engine = self.engine
        with engine.lock:
            return [*engine.tick(), *engine.health_points(), *self.ledger.drain()]

    def committed(self) -> None:
        """The records are stored: save the alert state, then notify and publish."""
        self.ledger.stored()
        self.engine.commit()

    def close(self) -> None:
        """Save what is unsaved and close the alert state (the engine's `close`)."""
        self.engine.close()


def _aligned(scores: Sequence[Point], readings: Sequence[Reading]) -> bool:
    """Whether the points are one per reading in order (the scoring processor skips none).

    The scoring processor appends one point per reading in order, leaving out only those it
    failed to score; equal counts and matching ends are enough to know none was left out.
    """
    if len(scores) != len(readings):
        return False
    if not readings:
        return True
    first, last = scores[0], scores[-1]
    return (first.ts, first.tags["asset"], last.ts, last.tags["asset"]) == (
        readings[0].ts,
        readings[0].asset,
        readings[-1].ts,
        readings[-1].asset,
    )
