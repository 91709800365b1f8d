"""Deadman rules: which assets and sites went silent, and which came back.

An asset is offline once the fleet's event time is ``for`` past the moment the asset was
last heard from (the fleet's newest timestamp when its last reading came, so an asset whose
clock runs behind the fleet's is not taken for silent), and a site is offline once every
asset of it watched by the same rule is. `Deadman` keeps which sites are down and when the
rules were last checked; the engine opens and resolves the episodes it names.

A site whose assets are spread over instances (`alerts.health.peers`) is offline when this
instance's assets of it are silent and the other instances report theirs offline. One
instance raises the site-wide alert: the one holding the site's first asset name; the others
hold their assets' alerts back as if they had raised it (`down_elsewhere`, an inhibition).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass

from alerts.base import SITE_WIDE, Alert, EpisodeKey, State
from alerts.fleet import TrackedAsset
from alerts.health.peers import SiteElsewhere
from alerts.messages import new_alert, values
from alerts.rules import DeadmanRule
from common.durations import format_duration

_NS = 1_000_000_000
#: Deadman rules are checked at most once per second of event time: durations are minutes.
_EVERY_NS = _NS


class Deadman:
    """The deadman rules' memory: the sites they have offline and when they last looked.

    Which assets they have offline is kept on each `TrackedAsset` (``silent``).
    """

    def __init__(self) -> None:
        self.sites_down: dict[str, set[str]] = {}
        #: Sites down as a whole whose site-wide alert another instance raises.
        self.down_elsewhere: frozenset[str] = frozenset()
        self.checked_at = 0

    def due(self, ts: int) -> bool:
        """Whether to check at event time `ts` (once a second at most); if so, it is checked."""
        if ts - self.checked_at < _EVERY_NS:
            return False
        self.checked_at = ts
        return True

    def check(
        self,
        assets: Iterable[TrackedAsset],
        open_: Container[EpisodeKey],
        now: int,
        elsewhere: Mapping[str, SiteElsewhere] | None = None,
    ) -> list[tuple[str, Alert, int]]:
        """The deadman alerts that fire at `now` (rule, alert, event time): assets, then sites.

        `open_` holds the episodes open now: a site already down is not opened again.
        `elsewhere` is how other instances see the sites they hold assets of.
        """
        tracked = list(assets)
        fired: list[tuple[str, Alert, int]] = []
        for rule, a, ts in list(gone_silent(tracked, now)):
            alert = new_alert(rule, a.site, a.asset, a.kind, State.FIRING, ts, rule.for_, None)
            alert.message = rule.render(values(rule, a, alert, int(rule.for_ * _NS)))
            a.silent.add(rule.name)
            fired.append((rule.name, alert, ts))
        away: set[str] = set()
        for rule, down in list(sites_down(tracked)):
            site, ts = down.site, down.at
            other = (elsewhere or {}).get(site)
            if other is not None:
                if not other.offline:
                    continue  # assets of it report to another instance
                if other.first_asset < down.first_asset:
                    away.add(site)  # that instance raises the site-wide alert
                    continue
            if (rule.name, site, SITE_WIDE) not in open_:
                alert = new_alert(rule, site, SITE_WIDE, None, State.FIRING, ts, rule.for_, None)
                held = format_duration(rule.for_)
                alert.message = rule.site_message({"site": site, "duration": held})
                self.sites_down.setdefault(site, set()).add(rule.name)
                fired.append((rule.name, alert, ts))
        self.down_elsewhere = frozenset(away)
        return fired

    def revived(self, elsewhere: Mapping[str, SiteElsewhere]) -> list[EpisodeKey]:
        """Sites this instance has down whose assets at another instance report again."""
        ended = []
        for site in sorted(self.sites_down):
            other = elsewhere.get(site)
            if other is not None and not other.offline:
                ended += [(name, site, SITE_WIDE) for name in sorted(self.sites_down.pop(site))]
        return ended

    def back(self, a: TrackedAsset) -> list[EpisodeKey]:
        """`a` reports again: the deadman episodes that end, its own and then its site's."""
        ended = [(name, a.site, a.asset) for name in sorted(a.silent)]
        a.silent.clear()
        ended += [(name, a.site, SITE_WIDE) for name in sorted(self.sites_down.pop(a.site, ()))]
        return ended

    def restore(self, ekey: EpisodeKey, assets: Mapping[tuple[str, str], TrackedAsset]) -> None:
        """A firing deadman episode, restored: its asset (or site) is offline again."""
        name, site, asset = ekey
        if asset == SITE_WIDE:
            self.sites_down.setdefault(site, set()).add(name)
        elif (a := assets.get((site, asset))) is not None:
            a.silent.add(name)


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


@dataclass(frozen=True, slots=True)
class SiteDown:
    """A site none of whose assets here report: when the last went silent, its first name."""

    site: str
    at: int
    first_asset: str


def sites_down(assets: Iterable[TrackedAsset]) -> Iterator[tuple[DeadmanRule, SiteDown]]:
    """Sites none of whose assets (watched by a site-wide deadman rule) report any more.

    The event time is when the last of them went silent.

    Examples
    --------
    >>> rule = DeadmanRule(name="offline", **{"for": "10s"})
    >>> quiet = [TrackedAsset("north", f"p{i}", None, i * _NS, i * _NS, deadman=(rule,),
    ...                       silent={"offline"}) for i in range(3)]
    >>> [(r.name, d.site, d.at // _NS, d.first_asset) for r, d in sites_down(quiet)]
    [('offline', 'north', 12, 'p0')]
    """
    down: dict[tuple[str, str], tuple[DeadmanRule, int, str]] = {}
    up: set[tuple[str, str]] = set()
    for a in assets:
        for rule in a.deadman:
            if not rule.site:
                continue
            key = (rule.name, a.site)
            if rule.name in a.silent:
                _, latest, first = down.get(key, (rule, 0, a.asset))
                down[key] = (rule, max(latest, a.heard + int(rule.for_ * _NS)), min(first, a.asset))
            else:
                up.add(key)
    for (_, site), (rule, ts, first) in down.items():
        if (rule.name, site) not in up:
            yield rule, SiteDown(site, ts, first)
