"""What the alert engine remembers of each asset between readings (`TrackedAsset`).

Which of them went silent is `alerts.deadman`'s to say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from alerts.rules import OPS, AnomalyRule, DeadmanRule, LimitRule

AnyRule = AnomalyRule | LimitRule | DeadmanRule
#: A limit rule unpacked for the per-reading loop: rule, metric, comparison, limit.
LimitCheck = tuple[LimitRule, str, Callable[[float, float], bool], float]


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
