"""Models: one online anomaly detector per asset, learning its machine's normal behaviour.

`models.scoring.ScoringProcessor` plugs into the ingest path as an `ingest.Processor`: each
batch of readings is scored once, and the scores are committed in the same transaction as
the readings. `models.asset.AssetModel` is the per-asset model, the same code that
`models.evaluation` runs over labelled files.
"""

from __future__ import annotations

from models.asset import AssetModel
from models.base import Verdict
from models.scoring import ScoringProcessor

__all__ = ["AssetModel", "ScoringProcessor", "Verdict"]
