"""A fleet stepped through simulated time: readings in time order, and the ground truth so far.

Every asset has its own random generator, seeded from the fleet seed and a stable hash of
``site/asset``, and publishes every ``1/rate`` seconds from a phase of its own; `Simulation`
merges the assets' streams by timestamp (ties in fleet order). The same fleet file, seed and
start time give the same readings, in the same order, every time.
"""

from __future__ import annotations

import heapq
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.timestamps import format_rfc3339
from simulators.faults import ActiveFault
from simulators.fleet import FaultSpec, FleetSpec, with_faults
from simulators.groundtruth import GroundTruth
from simulators.kinds import AssetPhysics

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SimReading:
    """One reading of one asset: identity, time (ns since the epoch), metrics and sequence."""

    site: str
    asset: str
    kind: str
    ts: int
    metrics: dict[str, float]
    seq: int

    def payload(self) -> dict[str, Any]:
        """The docs/design.md §2 payload: ``{"ts", "kind", "seq", "metrics"}``, ``ts`` in RFC 3339.

        Examples
        --------
        >>> r = SimReading("berlin", "cnc-1", "cnc-mill", 1_767_225_600_000_000_000, {"x": 1.0}, 3)
        >>> r.payload()
        {'ts': '2026-01-01T00:00:00.000Z', 'kind': 'cnc-mill', 'seq': 3, 'metrics': {'x': 1.0}}
        """
        return {
            "ts": format_rfc3339(self.ts),
            "kind": self.kind,
            "seq": self.seq,
            "metrics": self.metrics,
        }


def asset_seed(seed: int, site: str, asset: str) -> int:
    """The seed of one asset's generator: the fleet seed XOR a stable hash (CRC-32) of its name.

    Examples
    --------
    >>> asset_seed(7, "berlin", "cnc-1") == asset_seed(7, "berlin", "cnc-1")
    True
    >>> asset_seed(7, "berlin", "cnc-1") == asset_seed(7, "lyon", "cnc-1")
    False
    """
    return seed ^ zlib.crc32(f"{site}/{asset}".encode())


class _Asset:
    """One asset's stream: physics, faults, its next reading time and sequence number."""

    __slots__ = ("asset", "faults", "kind", "next_ns", "period_ns", "physics", "rng", "seq", "site")

    def __init__(
        self, site: str, asset: str, kind: str, rate: float, seed: int, start_ns: int
    ) -> None:
        self.site, self.asset, self.kind = site, asset, kind
        base = asset_seed(seed, site, asset)
        physics_rng = random.Random(base)
        self.period_ns = round(_NS / rate)
        # A phase of its own, so a fleet's readings spread over the period (whole milliseconds).
        self.next_ns = (
            start_ns + physics_rng.randrange(max(1, self.period_ns // 1_000_000)) * 1_000_000
        )
        self.physics = AssetPhysics(kind, physics_rng, self.next_ns)
        self.rng = random.Random(base ^ 0x5EED_FA17)  # faults' own draws
        self.faults: list[ActiveFault] = []
        self.seq = 0

    def emit(self) -> SimReading | None:
        """Step to ``next_ns``; the reading there, or None when a fault keeps it from publishing."""
        t = self.next_ns
        metrics = self.physics.step(t, self.period_ns / _NS)
        self.next_ns = t + self.period_ns
        self.seq += 1
        silent = False
        for fault in self.faults:
            if fault.silences(t, self.rng):
                silent = True
            fault.apply(t, metrics, self.rng)
        if silent:
            return None
        return SimReading(self.site, self.asset, self.kind, t, metrics, self.seq)


class Simulation:
    """A fleet in simulated time, from ``start_ns``.

    Parameters
    ----------
    fleet
        The fleet, its seed and its scheduled faults.
    start_ns
        The simulated start (ns since the epoch); fault onsets count from it.
    extra_faults
        More faults (``--fault`` options); `FleetError` when one does not fit the fleet.

    Examples
    --------
    >>> from simulators.fleet import AssetSpec, SiteSpec
    >>> site = SiteSpec(name="lyon", assets=[AssetSpec(id="c1", kind="conveyor")])
    >>> fleet = FleetSpec(sites=[site])
    >>> sim = Simulation(fleet, start_ns=1_767_225_600_000_000_000)
    >>> readings = sim.until(1_767_225_609_999_999_999)
    >>> len(readings), [r.seq for r in readings][:3]
    (10, [1, 2, 3])
    """

    def __init__(
        self, fleet: FleetSpec, start_ns: int, extra_faults: Sequence[FaultSpec] = ()
    ) -> None:
        self.fleet = with_faults(fleet, tuple(extra_faults))
        self.start_ns = start_ns
        self.now_ns = start_ns
        assets: dict[tuple[str, str], _Asset] = {}
        for site in self.fleet.sites:
            for spec in site.assets:
                assets[site.name, spec.id] = _Asset(
                    site.name, spec.id, spec.kind, spec.rate, self.fleet.seed, start_ns
                )
        self._faults: list[ActiveFault] = []
        for fault in self.fleet.faults:
            asset = assets[fault.site, fault.asset]
            active = ActiveFault(fault, asset.kind, start_ns)
            asset.faults.append(active)
            self._faults.append(active)
        self._assets = list(assets.values())
        self._heap = [(a.next_ns, i) for i, a in enumerate(self._assets)]
        heapq.heapify(self._heap)

    @property
    def next_ns(self) -> int:
        """When the next reading is due (it may still be suppressed by a fault)."""
        return self._heap[0][0]

    @property
    def assets(self) -> int:
        """How many assets the fleet has."""
        return len(self._assets)

    def until(self, t_ns: int) -> list[SimReading]:
        """Every reading with ``ts <= t_ns`` not returned yet, in time order."""
        heap, assets = self._heap, self._assets
        out: list[SimReading] = []
        while heap[0][0] <= t_ns:
            _, i = heap[0]
            asset = assets[i]
            reading = asset.emit()
            heapq.heapreplace(heap, (asset.next_ns, i))
            if reading is not None:
                out.append(reading)
        self.now_ns = max(self.now_ns, t_ns)
        return out

    @property
    def labels(self) -> list[GroundTruth]:
        """Ground truth of the faults whose onset simulated time has reached, in onset order."""
        started = [f for f in self._faults if f.onset_ns <= self.now_ns]
        started.sort(key=lambda f: f.onset_ns)
        return [
            GroundTruth(f.spec.site, f.spec.asset, f.spec.type, f.onset_ns, f.end_ns)
            for f in started
        ]
