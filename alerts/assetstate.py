"""One asset's alert state, apart from the instance's: what moves when the asset does.

On a RabbitMQ cluster (docs/design.md §10) an asset's partition moves between instances. With
a shared store (``alerts.state_url``, `alerts.sharedstate`) the asset's alert state moves with
it: its open episodes (pending ones too, at a hand-over: an on-delay does not start over),
which receivers were told each firing alert fired and when (so the new owner neither
announces it again nor forgets to tell its resolution), its flap history, its last reading
and when it was heard (the deadman's clock), its health entry, and the shelves of its alerts.

What stays with the instance, in its ``alerts.db``: silences (every instance applies every
silence), site-wide alerts (raised by one instance for the whole site), the notification
outbox (an instance delivers what it queued, also after a restart), the dispatcher's groups
of the alerts it resolved, the resolved alerts and labels (feedback is answered by the
instance that resolved an alert), the fleet clock.

This module holds the values and the split of a save between the two stores; the engine's
hand-over room is `alerts.handover`, the PostgreSQL store `alerts.sharedstate`.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts.base import SITE_WIDE, AssetKey, EpisodeKey
from alerts.state import Changes, Snapshot

#: An asset's tracked values: kind, last reading's event time, fleet time when heard.
Tracked = tuple[str | None, int, int]


@dataclass(frozen=True, slots=True)
class AssetAlerts:
    """The alert state of one asset, whole: what a new owner takes over.

    Parameters
    ----------
    site, asset
        The asset (never the site-wide ``*``).
    kind, last_ts, heard
        Its kind, its last reading's event time and the fleet's event time when it came.
    clock
        The holder's fleet clock when it saved this: how long the asset had been silent then
        is ``clock - heard``.
    episodes
        Its open episodes by rule (`alerts.lifecycle.Episode.to_state`).
    told
        By rule, the receivers told that the rule's firing alert fired, with when (ns).
    flaps
        By rule, the recent firing times (`alerts.flapping`).
    health
        Its health map entry (`alerts.health.status.AssetHealth.to_state`), if it has one.
    shelves
        The shelves of its alerts (`alerts.shelves.Shelf.to_state`).

    Examples
    --------
    >>> AssetAlerts("north", "*", None, 0, 0)
    Traceback (most recent call last):
    ...
    ValueError: '*' is a site-wide alert's asset, not an asset whose state can move
    """

    site: str
    asset: str
    kind: str | None
    last_ts: int
    heard: int
    clock: int = 0
    episodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    told: dict[str, dict[str, int]] = field(default_factory=dict)
    flaps: dict[str, list[int]] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    shelves: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.site or not self.asset:
            raise ValueError(f"an asset needs a site and a name, got {self.site!r}/{self.asset!r}")
        if self.asset == SITE_WIDE:
            raise ValueError(
                f"{SITE_WIDE!r} is a site-wide alert's asset, not an asset whose state can move"
            )

    @property
    def key(self) -> AssetKey:
        """(site, asset)."""
        return (self.site, self.asset)


@dataclass(slots=True)
class SharedChanges:
    """The part of a save (`alerts.state.Changes`) that belongs to assets, not the instance.

    None for an episode or a flap history deletes it.
    """

    episodes: dict[EpisodeKey, dict[str, Any] | None] = field(default_factory=dict)
    told: dict[EpisodeKey, dict[str, int]] = field(default_factory=dict)
    flaps: dict[EpisodeKey, list[int] | None] = field(default_factory=dict)
    assets: dict[AssetKey, Tracked] = field(default_factory=dict)
    health: dict[AssetKey, dict[str, Any]] = field(default_factory=dict)
    #: The fleet clock when `assets` were saved (each asset's silence is measured on it).
    clock: int = 0

    def __bool__(self) -> bool:
        return bool(self.episodes or self.told or self.flaps or self.assets or self.health)

    def keys(self) -> set[AssetKey]:
        """Every asset this save touches."""
        found = {(s, a) for _, s, a in (*self.episodes, *self.told, *self.flaps)}
        return found | self.assets.keys() | self.health.keys()

    def merge(self, newer: SharedChanges) -> None:
        """Take `newer`'s changes over these (a save that failed, then the next one)."""
        self.episodes.update(newer.episodes)
        self.told.update(newer.told)
        self.flaps.update(newer.flaps)
        self.assets.update(newer.assets)
        self.health.update(newer.health)
        self.clock = max(self.clock, newer.clock)

    def drop(self, keys: Container[AssetKey]) -> None:
        """Forget the changes of these assets (another instance holds them now)."""
        for table in (self.episodes, self.told, self.flaps):
            for ekey in [k for k in table if (k[1], k[2]) in keys]:
                del table[ekey]
        for key in [k for k in self.assets if k in keys]:
            del self.assets[key]
        for key in [k for k in self.health if k in keys]:
            del self.health[key]


class SharedAlertState(Protocol):
    """Where assets' alert state lives so that every instance of a cluster reaches it.

    Each asset has a *holder*: the instance that reads it now, or none once given up.
    """

    #: This instance's name (``mqtt.client_id``), the holder it writes.
    instance: str

    def save(self, changes: SharedChanges) -> set[AssetKey]:
        """Save in one transaction; return the assets another instance holds (left unwritten)."""

    def hand_over(self, states: Sequence[AssetAlerts], *, keep: bool) -> set[AssetKey]:
        """Replace these assets' state at once, held by none (kept: still by this instance).

        Returns the assets another instance holds, which are left unwritten.
        """

    def claim(self, keys: Collection[AssetKey]) -> dict[AssetKey, AssetAlerts]:
        """The saved state of these assets (those that have one); this instance holds them now."""

    def held(self) -> list[AssetAlerts]:
        """The assets this instance held when it stopped or died, with their state."""

    def close(self) -> None:
        """Release the connection."""


def take_shared(changes: Changes) -> SharedChanges:
    """Move the assets' part of `changes` out of it; what is left is the instance's.

    Site-wide episodes (and their firing history) stay with the instance that raised them.

    Examples
    --------
    >>> changes = Changes(episodes={("hot", "n", "p1"): {}, ("offline", "n", "*"): None})
    >>> moved = take_shared(changes)
    >>> list(moved.episodes), list(changes.episodes)
    ([('hot', 'n', 'p1')], [('offline', 'n', '*')])
    """
    moved = SharedChanges(told=changes.told, assets=changes.assets, health=changes.health)
    changes.told, changes.assets, changes.health = {}, {}, {}
    for ekey in [k for k in changes.episodes if k[2] != SITE_WIDE]:
        moved.episodes[ekey] = changes.episodes.pop(ekey)
    for ekey in [k for k in changes.flaps if k[2] != SITE_WIDE]:
        moved.flaps[ekey] = changes.flaps.pop(ekey)
    return moved


def instance_wide(snap: Snapshot) -> Snapshot:
    """What an instance restores from its own file when assets' state is shared.

    Its assets, their health and episodes come from the shared store instead (those it
    held), so a row left in the file from before cannot bring back an asset another
    instance holds now; nor can a firing alert of an asset in the dispatcher's groups, where
    only the resolutions this instance still owes its receivers stay. The advice is worked
    out again.
    """
    groups = []
    for group in snap.groups:
        alerts = [a for a in group["alerts"] if a["asset"] == SITE_WIDE or a["state"] != "firing"]
        if alerts:
            groups.append({**group, "alerts": alerts})
    return Snapshot(
        episodes={k: v for k, v in snap.episodes.items() if k[2] == SITE_WIDE},
        silences=snap.silences,
        kv={k: v for k, v in snap.kv.items() if k != "advice"},
        groups=groups,
        shelves=snap.shelves,
        flaps={k: v for k, v in snap.flaps.items() if k[2] == SITE_WIDE},
    )
