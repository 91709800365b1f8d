"""Ingest: MQTT telemetry in, validated, stored durably, acknowledged.

The path every reading takes from an edge sensor to storage: topic templates and payload
decoding (`ingest.topic`, `ingest.decode`), the stores (`ingest.embedded`, `ingest.influx` with
its durable `ingest.spool`), dead letters (`ingest.deadletters`), the batch processor
(`ingest.pipeline`) and the MQTT subscriber (`ingest.subscriber`).
"""

from __future__ import annotations

from ingest.base import Batch, Point, Processor, Reading, Store

__all__ = ["Batch", "Point", "Processor", "Reading", "Store"]
