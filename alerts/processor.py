"""The alerting step of the pipeline: readings and their scores in, ``alert`` records out.

Plugs into ingest as a `Processor` after the scoring processor, whose ``anomaly`` points it
reads for each reading's verdict; a reading without one (models off, a model failed) is
judged by the limit and deadman rules only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.base import Observation
from alerts.engine import AlertEngine
from ingest.base import Point, Reading


class AlertProcessor:
    """Turns a batch into observations for the `AlertEngine`.

    Parameters
    ----------
    engine
        The alert engine.
    """

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def process(self, readings: Sequence[Reading], derived: Sequence[Point] = ()) -> list[Point]:
        """The ``alert`` records this batch caused."""
        verdicts = {
            (p.tags["site"], p.tags["asset"], p.ts): p.fields
            for p in derived
            if p.measurement == "anomaly"
        }
        observations = []
        for r in readings:
            v = verdicts.get((r.site, r.asset, r.ts))
            if v is None:
                observations.append(Observation(r.site, r.asset, r.kind, r.ts, r.metrics))
            else:
                observations.append(
                    Observation(
                        r.site,
                        r.asset,
                        r.kind,
                        r.ts,
                        r.metrics,
                        float(v["score"]),
                        bool(v["anomalous"]),
                        str(v["top_metric"]) if v.get("top_metric") else None,
                        bool(v["warming_up"]),
                    )
                )
        return self.engine.observe(observations)

    def tick(self) -> list[Point]:
        """The ``alert`` records that passing time caused (assets that went silent)."""
        return self.engine.tick()
