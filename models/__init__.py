"""Models: one online anomaly detector per asset, learning its machine's normal behaviour.

`models.scoring.ScoringProcessor` plugs into the ingest path as an `ingest.Processor`: each
batch of readings is scored once, and the scores are committed in the same transaction as
the readings. `models.asset.AssetModel` is the per-asset model, the same code that
`models.evaluation` runs over labelled files.

The package imports none of its modules: commands that read `models.settings` but never score
do not pay for importing the detectors and river.
"""

from __future__ import annotations

__all__: list[str] = []
