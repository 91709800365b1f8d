"""The fleet of a run: which sites, split into parts, and their readings as ingest decodes them.

A quick run (``--sites N``) takes the sites with scheduled faults first, in the order of
their faults, then the others in the file's order: in the shipped large fleet the first 5
sites hold one fault of each type (bearing wear, motor fault, overheating, sudden failure,
pressure leak), so even a small run judges every kind of fault.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.detection import Fault
from ingest.base import Reading
from simulators.fleet import FleetSpec, fleet_path, load_fleet
from simulators.groundtruth import GroundTruth
from simulators.simulation import Simulation

#: 2026-01-01T00:00Z, the start of the other benchmarks' fleets; midnight, so a day of
#: simulated time sweeps the ambient temperature through one whole swing.
START_NS = 1_767_225_600_000_000_000
NS = 1_000_000_000


def load(name: str) -> FleetSpec:
    """A shipped fleet (``large``, ``small``) or a fleet file."""
    return load_fleet(fleet_path(name))


def chosen_sites(fleet: FleetSpec, count: int | None) -> list[str]:
    """The names of the first ``count`` sites (all when None), sites with faults first.

    Examples
    --------
    >>> fleet = load("large")
    >>> chosen_sites(fleet, 5)
    ['site-00', 'site-07', 'site-14', 'site-21', 'site-28']
    >>> len(chosen_sites(fleet, None))
    50
    """
    order = list(dict.fromkeys(f.site for f in fleet.faults))
    order += [s.name for s in fleet.sites if s.name not in order]
    return order if count is None else order[:count]


def parts(sites: Sequence[str], workers: int) -> list[tuple[str, ...]]:
    """The sites dealt in turn to ``workers`` parts (fewer when there are fewer sites).

    Examples
    --------
    >>> parts(["a", "b", "c", "d", "e"], 2)
    [('a', 'c', 'e'), ('b', 'd')]
    """
    count = max(1, min(workers, len(sites)))
    return [tuple(sites[i::count]) for i in range(count)]


def subfleet(fleet: FleetSpec, sites: Sequence[str]) -> FleetSpec:
    """The fleet cut to these sites and their faults (same seed: the same readings)."""
    keep = set(sites)
    return FleetSpec(
        seed=fleet.seed,
        sites=[s for s in fleet.sites if s.name in keep],
        faults=[f for f in fleet.faults if f.site in keep],
    )


def assets(fleet: FleetSpec) -> int:
    """How many assets the fleet has (the machines of the report, silent ones included)."""
    return sum(len(s.assets) for s in fleet.sites)


def readings_per_hour(fleet: FleetSpec) -> float:
    """How many readings the fleet sends in a simulated hour."""
    return 3600 * sum(a.rate for s in fleet.sites for a in s.assets)


def next_readings(sim: Simulation, until_ns: int) -> list[Reading]:
    """The simulation's readings up to ``until_ns``, as ingest's decoder would make them."""
    return [Reading(r.site, r.asset, r.kind, r.ts, r.metrics, r.seq) for r in sim.until(until_ns)]


def faults(labels: Sequence[GroundTruth], end_ns: int) -> list[Fault]:
    """The faults of the ground truth; one still on at the end lasts until ``end_ns``.

    As `simulators.groundtruth.write_labels` writes them for a run that ends at ``end_ns``.
    """
    return [
        Fault(
            g.site,
            g.asset,
            g.fault,
            g.start,
            end_ns if g.end is None else min(g.end, max(end_ns, g.start)),
        )
        for g in labels
    ]
