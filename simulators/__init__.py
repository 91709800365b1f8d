"""Simulators: a micro-factory fleet with faults and ground truth, record and replay.

Simulators speak MQTT like real sensors and import nothing of the pipeline. The fleet
simulator is a fleet file (`fleet`), asset kinds with their physics (`kinds`), fault injection
(`faults`), a fleet stepped through simulated time (`simulation`), its ground truth
(`groundtruth`) and the runner that publishes it (`publisher`).
"""

from __future__ import annotations

from simulators.errors import FaultOptionError, FleetError, SimulatorError
from simulators.fleet import AssetSpec, FaultSpec, FleetSpec, SiteSpec, load_fleet, shipped
from simulators.groundtruth import GroundTruth, read_labels, write_labels
from simulators.simulation import SimReading, Simulation

__all__ = [
    "AssetSpec",
    "FaultOptionError",
    "FaultSpec",
    "FleetError",
    "FleetSpec",
    "GroundTruth",
    "SimReading",
    "Simulation",
    "SimulatorError",
    "SiteSpec",
    "load_fleet",
    "read_labels",
    "shipped",
    "write_labels",
]
