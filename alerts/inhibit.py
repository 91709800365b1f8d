"""Inhibition: some firing alerts make others redundant, so those stay quiet.

Two rules, as the fleet needs them: an offline site inhibits the alerts of its assets (one
"site offline" instead of a dozen "asset offline"), and a critical alert of an asset inhibits
its lesser alerts (the warning says nothing the critical alert did not).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.base import SITE_WIDE, Alert, Labels, Severity, State

_CRITICAL = Severity.CRITICAL.value


@dataclass(frozen=True, slots=True)
class Inhibitor:
    """A `Muter` built from the alerts firing now.

    Examples
    --------
    >>> from alerts.base import Alert
    >>> site_down = Alert("x", "offline", Severity.CRITICAL, "plant-b", SITE_WIDE, None,
    ...                   State.FIRING, 0, 0.0, "")
    >>> inhibitor = Inhibitor.of([site_down])
    >>> inhibitor.mutes({"site": "plant-b", "asset": "cnc-1", "severity": "critical"}, 0)
    True
    >>> inhibitor.mutes({"site": "plant-b", "asset": SITE_WIDE, "severity": "critical"}, 0)
    False
    """

    offline_sites: frozenset[str]
    critical_assets: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, alerts: Iterable[Alert], sites_down: Iterable[str] = ()) -> Inhibitor:
        """The inhibitions the firing ones among `alerts` impose.

        `sites_down` are sites down as a whole whose site-wide alert another instance raised.
        """
        sites = set(sites_down)
        critical = set()
        for a in alerts:
            if a.state is not State.FIRING:
                continue
            if a.asset == SITE_WIDE:
                sites.add(a.site)
            elif a.severity is Severity.CRITICAL:
                critical.add((a.site, a.asset))
        return cls(frozenset(sites), frozenset(critical))

    def mutes(self, labels: Labels, ts: int) -> bool:
        """Whether an alert with these labels is inhibited (by what fires now, whatever `ts`)."""
        site = labels.get("site", "")
        asset = labels.get("asset", "")
        if asset == SITE_WIDE:
            return False
        if site in self.offline_sites:
            return True
        return labels.get("severity") != _CRITICAL and (site, asset) in self.critical_assets
