"""Reroute advice: where the work of a failing asset can go.

When an asset's condition is critical or offline, the advice names it and ranks the healthy
assets of the same kind at other sites: healthiest first (anomaly score in steps of 0.1, so
noise between healthy machines does not decide), then least loaded (a load metric the asset
reports, such as ``utilization``), then by score. A scheduler subscribed to
``meshwatch/reroute/#`` needs nothing else from meshwatch to act on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alerts.health import FAILING, AssetHealth
from ingest.timestamps import format_rfc3339

AssetKey = tuple[str, str]


class RerouteSettings(BaseModel):
    """How reroute advice is ranked (``alerts.reroute``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: At most this many candidates per advice; a scheduler needs a few good choices.
    max_candidates: int = Field(5, ge=1, le=100)
    #: Metrics that tell how busy an asset is, first found wins (lower is less loaded).
    load_metrics: list[str] = Field(
        default_factory=lambda: ["load", "utilization", "utilisation", "duty_cycle"]
    )


def advise(
    failing: AssetHealth,
    fleet: Iterable[AssetHealth],
    loads: Mapping[AssetKey, float],
    limit: int,
    scores: Mapping[AssetKey, float | None] | None = None,
) -> dict[str, Any]:
    """The retained advice for `failing`: healthy same-kind assets at other sites, best first.

    `scores` are the assets' latest scores (the health map keeps the score of its last
    change); without them, the map's are used.

    Examples
    --------
    >>> fleet = [AssetHealth("b", "cnc-2", "cnc", score=0.14), AssetHealth("c", "cnc-3", "cnc",
    ...          score=0.12), AssetHealth("c", "cnc-4", "cnc", status="offline"),
    ...          AssetHealth("a", "cnc-5", "cnc", score=0.1)]
    >>> failing = AssetHealth("a", "cnc-1", "cnc", status="critical", condition="critical")
    >>> [c["asset"] for c in advise(failing, fleet, {("b", "cnc-2"): 0.2,
    ...                                              ("c", "cnc-3"): 0.9}, 5)["candidates"]]
    ['cnc-2', 'cnc-3']
    """
    candidates = [
        h
        for h in fleet
        if h.kind is not None
        and h.kind == failing.kind
        and h.site != failing.site
        and h.status == "ok"
    ]

    def score_of(h: AssetHealth) -> float | None:
        return scores.get((h.site, h.asset), h.score) if scores is not None else h.score

    def rank(h: AssetHealth) -> tuple[float, float, float, str, str]:
        score = score_of(h) or 0.0
        return (round(score, 1), loads.get((h.site, h.asset), 0.0), score, h.site, h.asset)

    candidates.sort(key=rank)
    return {
        "site": failing.site,
        "asset": failing.asset,
        "kind": failing.kind,
        "status": failing.condition,
        "since": format_rfc3339(failing.since),
        "candidates": [
            {"site": h.site, "asset": h.asset, "status": h.status, "score": score_of(h)}
            for h in candidates[:limit]
        ],
    }


def identity(advice: Mapping[str, Any] | None) -> object:
    """What makes advice worth republishing: status and the candidates' names, not scores."""
    if advice is None:
        return None
    return (advice["status"], tuple((c["site"], c["asset"]) for c in advice["candidates"]))


def refresh(
    health: Mapping[AssetKey, AssetHealth],
    published: Mapping[AssetKey, object],
    loads: Mapping[AssetKey, float],
    limit: int,
    scores: Mapping[AssetKey, float | None] | None = None,
) -> dict[AssetKey, dict[str, Any] | None]:
    """Advice that changed since `published` (identities): new payloads, or None to clear."""
    changed: dict[AssetKey, dict[str, Any] | None] = {}
    fleet = list(health.values())
    for key, h in health.items():
        if h.condition in FAILING:
            advice = advise(h, fleet, loads, limit, scores)
            if identity(advice) != published.get(key):
                changed[key] = advice
        elif key in published:
            changed[key] = None
    for key in published:
        if key not in health:
            changed[key] = None
    return changed
