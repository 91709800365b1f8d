"""Prometheus metrics of the alerts, registered beside ingest's on the same registry.

Besides traffic (transitions, changes of level, notifications, commands), the alarm-hygiene
figures of ISA-18.2 and EEMUA 191: chattering alerts (three firings within a minute, counted
as they happen), stale alerts (firing for more than a day), and the alerts held flapping or
shelved; and the feedback of maintenance staff: verdicts by kind, and model resets.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from alerts.base import Alert, State

#: ISA-18.2 and EEMUA 191: an alarm that has stood for more than 24 hours is stale.
STALE_NS = 24 * 3600 * 1_000_000_000


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
        self.level_changes = Counter(
            "meshwatch_alert_level_changes",
            "Firing alerts that changed severity (escalated, fell back), by rule and new severity",
            ["rule", "severity"],
            registry=r,
        )
        self.notifications = Counter(
            "meshwatch_notifications",
            "Notifications by receiver and outcome (queued, delivered, retried, failed)",
            ["receiver", "outcome"],
            registry=r,
        )
        self.muted = Counter(
            "meshwatch_notifications_muted",
            "Alert notifications held back, by cause (silenced, inhibited, shelved)",
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
        self.chattering = Counter(
            "meshwatch_alerts_chattering",
            "Alerts that fired a third time within a minute (ISA-18.2 chattering), by rule",
            ["rule"],
            registry=r,
        )
        self.stale = Gauge(
            "meshwatch_alerts_stale",
            "Alerts firing for more than 24 h of event time (ISA-18.2 stale alarms)",
            registry=r,
        )
        self.flapping = Gauge(
            "meshwatch_alerts_flapping", "Alerts held firing by flap damping now", registry=r
        )
        self.shelved = Gauge("meshwatch_alerts_shelved", "Alerts shelved now", registry=r)
        self.feedback = Counter(
            "meshwatch_feedback",
            "Verdicts of maintenance staff on alerts, by verdict (normal, fault)",
            ["verdict"],
            registry=r,
        )
        self.model_resets = Counter(
            "meshwatch_model_resets",
            "Asset models reset by command (they learn again from scratch)",
            registry=r,
        )

    def census(self, alerts: Iterable[Alert], shelved: int, now: int) -> None:
        """Set the stale, flapping and shelved gauges from the open alerts at event time `now`."""
        stale = flapping = 0
        for a in alerts:
            if a.state is State.FIRING:
                stale += now - a.started_at > STALE_NS
                flapping += a.flapping
        self.stale.set(stale)
        self.flapping.set(flapping)
        self.shelved.set(shelved)
