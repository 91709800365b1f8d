"""Reroute advice: where the work of a failing asset can go.

When an asset's condition is critical or offline, the advice names it and ranks the healthy
assets of the same kind at other sites: healthiest first (anomaly score in steps of 0.1, so
noise between healthy machines does not decide), then least loaded (a load metric the asset
reports, such as ``utilization``). A scheduler subscribed to
``meshwatch/reroute/#`` needs nothing else from meshwatch to act on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alerts.base import AssetKey
from alerts.health.status import FAILING, AssetHealth
from common.timestamps import format_rfc3339


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


ScoreOf = Callable[[AssetKey], "float | None"]


def advise(
    failing: AssetHealth,
    fleet: Iterable[AssetHealth],
    loads: Mapping[AssetKey, float],
    limit: int,
) -> dict[str, Any]:
    """The retained advice for `failing`: healthy same-kind assets at other sites, best first.

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
    health = {(h.site, h.asset): h for h in fleet}
    ranked = rank(health.values(), loads, lambda key: health[key].score)
    return _advice(failing, ranked.get(failing.kind or "", []), health, limit, None)


def identity(advice: Mapping[str, Any] | None) -> object:
    """What makes advice worth republishing: status and the candidates' names, not scores."""
    if advice is None:
        return None
    return (advice["status"], tuple((c["site"], c["asset"]) for c in advice["candidates"]))


def rank(
    fleet: Iterable[AssetHealth], loads: Mapping[AssetKey, float], score_of: ScoreOf
) -> dict[str, list[AssetKey]]:
    """The healthy assets of each kind, best first.

    Scores count in steps of 0.1 and loads in steps of 0.1 (below 1) or 1 (above): noise
    between healthy machines neither decides the order nor republishes the advice.
    """
    by_kind: dict[str, list[tuple[tuple[float, float, str, str], AssetKey]]] = {}
    for h in fleet:
        if h.status != "ok" or h.kind is None:
            continue
        key = (h.site, h.asset)
        load = loads.get(key, 0.0)
        step = round(load, 1) if abs(load) < 1 else float(round(load))
        order = (round(score_of(key) or 0.0, 1), step, h.site, h.asset)
        by_kind.setdefault(h.kind, []).append((order, key))
    return {kind: [key for _, key in sorted(items)] for kind, items in by_kind.items()}


def refresh(
    health: Mapping[AssetKey, AssetHealth],
    published: Mapping[AssetKey, object],
    ranked: Mapping[str, Sequence[AssetKey]],
    limit: int,
    score_of: ScoreOf | None = None,
    fleet: Mapping[AssetKey, AssetHealth] | None = None,
) -> dict[AssetKey, dict[str, Any] | None]:
    """Advice that changed since `published` (identities): new payloads, or None to clear.

    `health` holds this instance's assets, the ones it advises for; `fleet` every asset whose
    health is known, other instances' too (the candidates; `health` when not given).
    `ranked` (from `rank`, possibly a little older than `health`) is walked for each failing
    asset, skipping what is no longer healthy: a refresh costs no sort of the fleet.
    """
    known = health if fleet is None else fleet
    changed: dict[AssetKey, dict[str, Any] | None] = {}
    for key, h in health.items():
        if h.condition in FAILING:
            advice = _advice(h, ranked.get(h.kind or "", []), known, limit, score_of)
            if identity(advice) != published.get(key):
                changed[key] = advice
    for key in published:
        h_ = health.get(key)
        if h_ is None or h_.condition not in FAILING:
            changed[key] = None
    return changed


def _advice(
    failing: AssetHealth,
    ranked: Sequence[AssetKey],
    health: Mapping[AssetKey, AssetHealth],
    limit: int,
    score_of: ScoreOf | None,
) -> dict[str, Any]:
    chosen = []
    for key in ranked:
        h = health.get(key)
        if h is not None and h.status == "ok" and h.site != failing.site:
            chosen.append(h)
            if len(chosen) == limit:
                break
    return {
        "site": failing.site,
        "asset": failing.asset,
        "kind": failing.kind,
        "status": failing.condition,
        "since": format_rfc3339(failing.since),
        "candidates": [
            {
                "site": h.site,
                "asset": h.asset,
                "status": h.status,
                "score": score_of((h.site, h.asset)) if score_of is not None else h.score,
            }
            for h in chosen
        ],
    }
