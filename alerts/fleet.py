"""What the alert engine remembers of each asset, and which of them went silent.

The deadman rules live here as pure functions over the tracked assets: an asset is offline
once the fleet's event time is ``for`` past the moment the asset was last heard from (the
fleet's newest timestamp when its last reading came, so an asset whose clock runs behind
the fleet's is not taken for silent), and a site is offline once every asset of it watched
by the same rule is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from alerts.rules import OPS, AnomalyRule, DeadmanRule, LimitRule

AnyRule = AnomalyRule | LimitRule | DeadmanRule
#: A limit rule unpacked for the per-reading loop: rule, metric, comparison, limit.
LimitCheck = tuple[LimitRule, str, Callable[[float, float], bool], float]
_NS = 1_000_000_000


@dataclass(slots=True)
class TrackedAsset:
    """An asset as the engine knows it between readings.

    `heard` is the fleet's event time when its last reading came; `silent` holds the names
    of the deadman rules that have it offline now, and `open` the names of the rules with an
    episode open on it (pending or firing): a rule without one and without its condition
    costs nothing more per reading.
    """

    site: str
    asset: str
    kind: str | None
    last_ts: int
    heard: int = 0
    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    anomaly: tuple[AnomalyRule, ...] = ()
    limits: tuple[LimitCheck, ...] = ()
    deadman: tuple[DeadmanRule, ...] = ()
    silent: set[str] = field(default_factory=set)
    open: set[str] = field(default_factory=set)

    def labels(self) -> dict[str, str]:
        """The labels rule scopes and silences match on."""
        return {"site": self.site, "asset": self.asset, "kind": self.kind or ""}

    def scope(self, rules: Sequence[AnyRule]) -> None:
        """Keep the rules that watch this asset, by kind (again after its kind changes)."""
        labels = self.labels()
        mine = [r for r in rules if r.applies_to(labels)]
        self.anomaly = tuple(r for r in mine if isinstance(r, AnomalyRule))
        self.limits = tuple(
            (r, r.metric, OPS[r.op], r.value) for r in mine if isinstance(r, LimitRule)
        )
        self.deadman = tuple(r for r in mine if isinstance(r, DeadmanRule))

    def load(self, names: Sequence[str]) -> float | None:
        """How busy it is: the first of `names` its last reading has."""
        for name in names:
            if name in self.metrics:
                return float(self.metrics[name])
        return None


def gone_silent(
    assets: Iterable[TrackedAsset], now: int
) -> Iterator[tuple[DeadmanRule, TrackedAsset, int]]:
    """Assets that a deadman rule should now call offline, with the event time they went.

    Offline means silent for longer than ``for``: readings exactly ``for`` apart are a slow
    sensor, not a dead one. The time is the last reading plus ``for``, not `now`: a replay at
    any speed, checked at any moment, gives the same alert.

    Examples
    --------
    >>> rule = DeadmanRule(name="offline", **{"for": "10s"})
    >>> a = TrackedAsset("north", "press-1", None, last_ts=5 * _NS, heard=5 * _NS,
    ...                  deadman=(rule,))
    >>> [(r.name, x.asset, ts // _NS) for r, x, ts in gone_silent([a], 20 * _NS)]
    [('offline', 'press-1', 15)]
    >>> list(gone_silent([a], 12 * _NS))
    []
    """
    for a in assets:
        for rule in a.deadman:
            hold = int(rule.for_ * _NS)
            if rule.name not in a.silent and now - a.heard > hold:
                yield rule, a, a.heard + hold


def sites_down(assets: Iterable[TrackedAsset]) -> Iterator[tuple[DeadmanRule, str, int]]:
    """Sites none of whose assets (watched by a site-wide deadman rule) report any more.

    The event time is when the last of them went silent.

    Examples
    --------
    >>> rule = DeadmanRule(name="offline", **{"for": "10s"})
    >>> quiet = [TrackedAsset("north", f"p{i}", None, i * _NS, i * _NS, deadman=(rule,),
    ...                       silent={"offline"}) for i in range(3)]
    >>> [(r.name, site, ts // _NS) for r, site, ts in sites_down(quiet)]
    [('offline', 'north', 12)]
    """
    down: dict[tuple[str, str], tuple[DeadmanRule, int]] = {}
    up: set[tuple[str, str]] = set()
    for a in assets:
        for rule in a.deadman:
            if not rule.site:
                continue
            key = (rule.name, a.site)
            if rule.name in a.silent:
                _, latest = down.get(key, (rule, 0))
                down[key] = (rule, max(latest, a.heard + int(rule.for_ * _NS)))
            else:
                up.add(key)
    for (_, site), (rule, ts) in down.items():
        if (rule.name, site) not in up:
            yield rule, site, ts
