"""Models: per-asset online anomaly detectors built from river (filled by the models issue).

They plug into the ingest path as an `ingest.Processor`: each batch of readings is scored
once, and the scores are committed in the same transaction as the readings.
"""

from __future__ import annotations

__all__: list[str] = []
