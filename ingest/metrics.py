"""Prometheus metrics of the ingest path, on a registry of their own.

Counters are bumped once per batch, never per message, so metrics stay off the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.errors import Reason


@dataclass
class IngestMetrics:
    """Every metric ingest exports; `registry` is what ``/metrics`` serves."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages_received = Counter(
            "meshwatch_messages_received", "MQTT messages received", registry=r
        )
        self.readings_accepted = Counter(
            "meshwatch_readings_accepted", "Readings decoded and committed", registry=r
        )
        self.messages_rejected = Counter(
            "meshwatch_messages_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        for reason in Reason:
            self.messages_rejected.labels(reason.value)
        self.messages_ignored = Counter(
            "meshwatch_messages_ignored",
            "Messages on meshwatch's own topics that matched the subscription, acked unstored",
            registry=r,
        )
        self.processor_errors = Counter(
            "meshwatch_processor_errors",
            "Batches a scoring/alerting processor failed on (stored unscored)",
            registry=r,
        )
        self.sequence_gaps = Counter(
            "meshwatch_sequence_gaps",
            "Readings missing by the sensors' own seq numbers",
            registry=r,
        )
        self.acks = Counter("meshwatch_acks", "MQTT PUBACKs sent after a commit", registry=r)
        self.store_write_seconds = Histogram(
            "meshwatch_store_write_seconds",
            "Time to commit one batch to the store or spool",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.store_errors = Counter(
            "meshwatch_store_errors", "Batch commits that failed and will be retried", registry=r
        )
        self.backpressure = Gauge(
            "meshwatch_backpressure", "1 while commits fail and acks are held back", registry=r
        )
        self.spool_depth_lines = Gauge(
            "meshwatch_spool_depth_lines", "Lines waiting in the spool for InfluxDB", registry=r
        )
        self.spool_depth_bytes = Gauge(
            "meshwatch_spool_depth_bytes", "Bytes waiting in the spool for InfluxDB", registry=r
        )
        self.influx_lines_written = Counter(
            "meshwatch_influx_lines_written", "Lines InfluxDB has taken", registry=r
        )
        self.influx_lines_rejected = Counter(
            "meshwatch_influx_lines_rejected",
            "Lines InfluxDB refused as malformed (kept in the spool's rejected table)",
            registry=r,
        )
        self.influx_write_errors = Counter(
            "meshwatch_influx_write_errors",
            "InfluxDB writes that failed",
            ["retryable"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "meshwatch_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.mqtt_connects = Counter(
            "meshwatch_mqtt_connects", "Successful connections to the broker", registry=r
        )
