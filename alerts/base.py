"""The values that travel through alerts, and the contracts of its pluggable parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from common.timestamps import format_rfc3339

#: Labels of an alert or an asset: ``site``, ``asset``, ``kind``, ``rule``, ``severity``.
Labels = Mapping[str, str]

#: The asset name of a site-wide alert (a whole site offline); not a valid asset ID, so it
#: cannot collide with a real asset, and legal in an MQTT topic name.
SITE_WIDE = "*"

#: What the alerts' MQTT connection adds to ``mqtt.client_id``: its status topic,
#: ``{prefix}/status/<client_id>-alerts``, says whether an instance is up to answer.
ALERTS_SUFFIX = "-alerts"

#: An asset: (site, asset).
AssetKey = tuple[str, str]
#: An episode of a rule on an asset (or a site, with `SITE_WIDE`): (rule, site, asset).
EpisodeKey = tuple[str, str, str]


class Severity(StrEnum):
    """How bad an alert is; the order (info < warning < critical) decides the health status."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0, 1 or 2: compare severities by this."""
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class State(StrEnum):
    """Where an alert is in its episode (inactive alerts do not exist)."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(slots=True)
class Observation:
    """What the rules see of one reading: its values and its model's verdict.

    Not frozen, unlike the other values here: one is made per reading, and a frozen
    dataclass costs 0.6 µs more to build (measured), a tenth of the alerting budget.

    Parameters
    ----------
    site, asset, kind
        Who sent it (`kind` None when the sensor did not say).
    ts
        Event time, nanoseconds since the epoch.
    metrics
        The reading's metrics.
    score, anomalous, top_metric, warming_up
        The asset model's verdict; score None when the reading was not scored.
    """

    site: str
    asset: str
    kind: str | None
    ts: int
    metrics: Mapping[str, float]
    score: float | None = None
    anomalous: bool = False
    top_metric: str | None = None
    warming_up: bool = False


@dataclass(slots=True)
class Alert:
    """One episode of one rule on one asset, from pending to resolved, under one `id`.

    Times are event times in nanoseconds; `started_at` is when the alert fired (for a pending
    alert, when its condition began), `resolved_at` when it resolved. `flapping` marks an
    alert held firing by flap damping (`alerts.flapping`): one alert for an episode of
    fire-and-resolve churn, resolved only once its condition has been quiet a while.
    """

    id: str
    rule: str
    severity: Severity
    site: str
    asset: str
    kind: str | None
    state: State
    started_at: int
    value: float
    message: str
    top_metric: str | None = None
    resolved_at: int | None = None
    acked_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    flapping: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """Deduplication key: (rule, site, asset)."""
        return (self.rule, self.site, self.asset)

    def labels(self) -> dict[str, str]:
        """The labels silences, inhibitions and routes match on."""
        return {
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind or "",
            "rule": self.rule,
            "severity": self.severity.value,
        }

    def to_state(self) -> dict[str, Any]:
        """Every field, exactly, for the state store."""
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity.value,
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "state": self.state.value,
            "started_at": self.started_at,
            "value": self.value,
            "message": self.message,
            "top_metric": self.top_metric,
            "resolved_at": self.resolved_at,
            "acked_by": self.acked_by,
            "extra": self.extra,
            "flapping": self.flapping,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of `to_state` (state saved before `flapping` existed reads as not flapping)."""
        return cls(
            **{**data, "severity": Severity(data["severity"]), "state": State(data["state"])}
        )

    def to_json(self, *, muted: str | None = None) -> dict[str, Any]:
        """The alert message of docs/design.md §3 (the alerts topic, webhooks).

        `muted` is the cause (``silenced``, ``inhibited``, ``shelved``) that covered a
        resolution sent to the receivers that heard the alert fire; None otherwise.
        """
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity.value,
            "state": self.state.value,
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "started_at": format_rfc3339(self.started_at),
            "resolved_at": None if self.resolved_at is None else format_rfc3339(self.resolved_at),
            "value": self.value,
            "top_metric": self.top_metric,
            "message": self.message,
            "silenced": muted == "silenced",
            "muted": muted,
            "flapping": self.flapping,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is asked to deliver: one alert, or a group of alerts sent together.

    Parameters
    ----------
    receiver
        Name of the receiver that delivers it.
    group
        The labels the alerts share (the route's ``group_by``); empty when not grouped.
    alerts
        Each alert as the docs/design.md §3 alert JSON (``meshwatch/alerts/{site}/{asset}``).
    id
        Unique delivery id (a far end can deduplicate retries by it).
    at
        Event time (ns) of the flush that queued it; 0 when unknown. Kept in the store's
        ``notification`` records (`alerts.history.records`), not in what is delivered.
    """

    receiver: str
    group: Mapping[str, str]
    alerts: Sequence[Mapping[str, Any]]
    id: str = ""
    at: int = 0

    def to_json(self) -> dict[str, Any]:
        """The form the outbox stores."""
        return {
            "id": self.id,
            "receiver": self.receiver,
            "group": dict(self.group),
            "alerts": list(self.alerts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        """Inverse of `to_json`."""
        return cls(data["receiver"], dict(data["group"]), list(data["alerts"]), data["id"])


class Receiver(Protocol):
    """Where notifications go (MQTT, webhook, email, log)."""

    name: str

    def notify(self, notification: Notification) -> None:
        """Deliver it, or raise `DeliveryError` saying whether a retry may succeed."""

    def close(self) -> None:
        """Release connections."""


class Muter(Protocol):
    """Silences and inhibitions: decide whether an alert's notifications are held back."""

    def mutes(self, labels: Labels, ts: int) -> bool:
        """True when notifications for an alert with these labels must not go out at `ts`."""


class Stage(Protocol):
    """One step of the notification pipeline: takes alerts, returns those that go on.

    ``cause`` names what an alert it holds back is muted by (``silenced``, ``inhibited``,
    ``shelved``): a resolution sent despite it says so.
    """

    cause: str

    def __call__(self, alerts: list[Alert], now: int) -> list[Alert]:
        """The alerts that go on at event time `now`."""


class Publisher(Protocol):
    """An MQTT connection the alerts can publish through (the wiring provides it)."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 publish; never blocks the caller."""

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK; raise `DeliveryError` if not."""
