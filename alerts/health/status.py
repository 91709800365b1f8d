"""The fleet health map: one status per asset, published when it changes.

Status, worst first: ``maintenance`` (a silence covers the asset), ``offline`` (a deadman
alert fires), ``critical``, ``warning`` (the worst firing alert's severity), ``ok``. The
``reason`` is the message of the alert behind the status, or the silence's comment.

A shelved alert still counts: shelving holds back notifications, it does not make a failing
machine healthy (its work should still move). Its entry in ``alerts`` says ``shelved_until``
and ``shelved_by``, and when it is the alert behind the status the reason says who shelved
it, until when and why. A flapping alert's entry says ``"flapping": true``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from alerts.base import Alert, Severity, State
from common.timestamps import format_rfc3339

if TYPE_CHECKING:
    # Only named in signatures: reading a saved health map (``status --local``) and the
    # settings (``config show``) need neither the rules behind the one nor the metrics
    # behind the other.
    from alerts.fleet import TrackedAsset
    from alerts.shelves import Shelves

Status = Literal["ok", "warning", "critical", "offline", "maintenance"]
#: The statuses whose work should move elsewhere (reroute advice).
FAILING: frozenset[str] = frozenset({"critical", "offline"})


@dataclass(slots=True)
class AssetHealth:
    """One asset's entry in the map.

    `condition` is the status the alerts alone give (maintenance aside): an asset under
    repair with a failing condition still needs its work moved.
    """

    site: str
    asset: str
    kind: str | None
    status: Status = "ok"
    condition: Status = "ok"
    since: int = 0
    reason: str = ""
    score: float | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The retained ``meshwatch/health/{site}/{asset}`` message of docs/design.md §3."""
        return {
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "status": self.status,
            "score": self.score,
            "since": format_rfc3339(self.since),
            "reason": self.reason,
            "alerts": self.alerts,
        }

    def to_state(self) -> dict[str, Any]:
        """Exact values for the state store."""
        return {
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "status": self.status,
            "condition": self.condition,
            "since": self.since,
            "reason": self.reason,
            "score": self.score,
            "alerts": self.alerts,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> AssetHealth:
        """Inverse of `to_state`."""
        return cls(**data)


def assess(
    open_alerts: Iterable[Alert], maintenance: str | None, shelves: Shelves | None = None
) -> tuple[Status, Status, str, list[dict[str, Any]]]:
    """Status, condition, reason and alert list of an asset from its open alerts.

    `maintenance` is the reason text of the silence covering the asset, when one does;
    `shelves` are the shelved alerts.

    Examples
    --------
    >>> a = Alert("1", "hot", Severity.CRITICAL, "s", "a", None, State.FIRING, 0, 95.0, "too hot")
    >>> assess([a], None)[:3]
    ('critical', 'critical', 'too hot')
    >>> assess([a], "silenced by ana: bearing swap")[:2]
    ('maintenance', 'critical')
    """
    worst: Alert | None = None
    worst_rank = -1
    listed: list[dict[str, Any]] = []
    for a in open_alerts:
        if a.state is not State.FIRING:
            continue
        entry: dict[str, Any] = {
            "id": a.id,
            "rule": a.rule,
            "severity": a.severity.value,
            "state": "firing",
        }
        if a.flapping:
            entry["flapping"] = True
        shelf = shelves.get(a.id) if shelves else None
        if shelf is not None:
            entry["shelved_until"] = format_rfc3339(int(shelf.ends_at * 1e9))
            entry["shelved_by"] = shelf.by
        listed.append(entry)
        rank = 3 if a.extra.get("type") == "deadman" else a.severity.rank
        if rank > worst_rank:
            worst, worst_rank = a, rank
    condition: Status
    if worst is None or worst_rank == Severity.INFO.rank:
        condition = "ok"
    elif worst_rank == 3:
        condition = "offline"
    else:
        condition = "critical" if worst.severity is Severity.CRITICAL else "warning"
    reason = "" if worst is None or condition == "ok" else worst.message
    shelf = shelves.get(worst.id) if shelves and worst is not None and reason else None
    if shelf is not None:
        reason = f"{reason} [{shelf.note()}]"
    listed.sort(key=lambda d: (d["rule"], d["id"]))
    if maintenance is not None:
        return "maintenance", condition, maintenance, listed
    return condition, condition, reason, listed


def examine(
    previous: AssetHealth | None,
    a: TrackedAsset,
    open_alerts: Iterable[Alert],
    maintenance: str | None,
    changed_at: int,
    shelves: Shelves | None = None,
) -> AssetHealth | None:
    """The asset's new entry when its status, reason, alerts or kind changed, else None.

    `maintenance` is the reason of the silence or window that has the asset in maintenance.
    `since` moves only when the status does, to `changed_at`: the event time of the change
    (an alert's transition, a first reading), or the time a silence started or ended.
    """
    status, condition, reason, listed = assess(open_alerts, maintenance, shelves)
    if previous is not None and (
        previous.status,
        previous.condition,
        previous.reason,
        previous.alerts,
        previous.kind,
    ) == (status, condition, reason, listed, a.kind):
        return None
    keep = previous is not None and previous.status == status
    since = previous.since if previous is not None and keep else changed_at
    return AssetHealth(a.site, a.asset, a.kind, status, condition, since, reason, a.score, listed)
