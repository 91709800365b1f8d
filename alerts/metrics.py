"""Prometheus metrics of the alerts, registered beside ingest's on the same registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AlertMetrics:
    """Every metric alerts export.

    Parameters
    ----------
    registry
        The registry ``/metrics`` serves (ingest's).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.transitions = Counter(
            "meshwatch_alert_transitions",
            "Alert state changes, by rule and new state (pending, firing, resolved)",
            ["rule", "state"],
            registry=r,
        )
        self.firing = Gauge(
            "meshwatch_alerts_firing", "Alerts firing now, by severity", ["severity"], registry=r
        )
        self.notifications = Counter(
            "meshwatch_notifications",
            "Notifications by receiver and outcome (queued, delivered, retried, failed)",
            ["receiver", "outcome"],
            registry=r,
        )
        self.muted = Counter(
            "meshwatch_notifications_muted",
            "Alert notifications held back, by cause (silenced, inhibited, acknowledged)",
            ["cause"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "meshwatch_outbox_depth",
            "Notifications waiting in the durable outbox, by receiver",
            ["receiver"],
            registry=r,
        )
        self.commands = Counter(
            "meshwatch_commands",
            "Commands received on the command topics, by command and outcome (ok, rejected)",
            ["command", "outcome"],
            registry=r,
        )
        self.health_changes = Counter(
            "meshwatch_health_changes",
            "Asset health changes published, by new status",
            ["status"],
            registry=r,
        )
