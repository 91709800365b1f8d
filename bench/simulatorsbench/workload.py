"""What is published: the large fleet's readings and the messages each batch size makes of them.

The readings are those `simulators.publisher.run` generates for the same fleet and start
time (same seed, same order), so the bare baseline publishes exactly the topics and payloads
the simulator does, batched the way the simulator batches: per asset, a JSON array of
``batch`` readings once that many have come, the partial batches at the end in first-seen
order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from simulators.fleet import FleetSpec, load_fleet, shipped
from simulators.publisher import topic_for
from simulators.recording import Recorded, RecordingWriter
from simulators.simulation import SimReading, Simulation

#: The simulator's default topic template (docs/design.md §2), and the filter the subscriber takes.
TOPIC = "plant/{site}/{asset}/telemetry"
TOPIC_FILTER = "plant/+/+/telemetry"
#: Simulated start: 2026-01-01T00:00:00Z, whole milliseconds as the publisher wants them.
START_NS = 1_767_225_600_000_000_000
_NS = 1_000_000_000


def large_fleet() -> FleetSpec:
    """The shipped large fleet (2,000 assets at 50 sites, 1 reading/s each, 20 faults)."""
    return load_fleet(shipped("large"))


@dataclass
class Workload:
    """The readings of one run and the messages they make.

    Attributes
    ----------
    fleet : FleetSpec
        The fleet they come from.
    readings : list of SimReading
        The first ``count`` readings from `START_NS`, in publishing order.
    """

    fleet: FleetSpec
    readings: list[SimReading]

    @classmethod
    def make(cls, fleet: FleetSpec, count: int) -> Workload:
        """The first ``count`` readings of ``fleet``, stepped a simulated second at a time."""
        sim = Simulation(fleet, START_NS)
        readings: list[SimReading] = []
        while len(readings) < count:
            readings += sim.until(sim.next_ns + _NS)
        return cls(fleet, readings[:count])

    def head(self, count: int) -> Workload:
        """The first ``count`` readings (all of them if there are fewer)."""
        return Workload(self.fleet, self.readings[:count])

    @property
    def assets(self) -> int:
        """Assets in the fleet."""
        return sum(len(site.assets) for site in self.fleet.sites)

    def messages(self, batch: int) -> list[tuple[str, bytes]]:
        """Topic and payload of every message `simulators.publisher.run` makes with ``batch``."""
        topics: dict[tuple[str, str], str] = {}
        pending: dict[tuple[str, str], list[SimReading]] = {}
        out: list[tuple[str, bytes]] = []
        for reading in self.readings:
            key = (reading.site, reading.asset)
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = topic_for(TOPIC, *key)
            if batch == 1:
                out.append((topic, orjson.dumps(reading.payload())))
                continue
            group = pending.setdefault(key, [])
            group.append(reading)
            if len(group) >= batch:
                out.append((topic, orjson.dumps([r.payload() for r in group])))
                group.clear()
        for key, group in pending.items():
            if group:
                out.append((topics[key], orjson.dumps([r.payload() for r in group])))
        return out

    def recorded(self) -> list[Recorded]:
        """The readings as recorded messages: one each, QoS 1, ``t`` the reading's time."""
        return [
            Recorded(reading.ts / _NS, topic, 1, False, payload)
            for reading, (topic, payload) in zip(self.readings, self.messages(1), strict=True)
        ]


def write_recording(path: Path, messages: list[Recorded]) -> int:
    """Write ``messages`` to the recording ``path``; return its size in bytes."""
    with RecordingWriter(path) as writer:
        for message in messages:
            writer.write(message)
    return path.stat().st_size
