"""The simulation: deterministic, time-ordered streams with docs/design.md §2 payloads."""

from __future__ import annotations

import math
import re

from simulators.fleet import AssetSpec, FleetSpec, SiteSpec, load_fleet, shipped
from simulators.simulation import Simulation

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def test_the_same_seed_gives_the_same_stream() -> None:
    """Two simulations of one fleet, seed and start produce identical readings."""
    fleet = load_fleet(shipped("small"))
    first = Simulation(fleet, START).until(START + 3600 * S)
    second = Simulation(fleet, START).until(START + 3600 * S)
    assert len(first) > 40_000
    assert first == second


def test_another_seed_gives_another_stream() -> None:
    """Changing the seed changes the readings."""
    fleet = load_fleet(shipped("small"))
    reseeded = fleet.model_copy(update={"seed": fleet.seed + 1})
    first = Simulation(fleet, START).until(START + 60 * S)
    second = Simulation(reseeded, START).until(START + 60 * S)
    assert [r.metrics for r in first] != [r.metrics for r in second]


def test_readings_come_in_time_order() -> None:
    """`until` returns readings sorted by timestamp, none later than asked for."""
    readings = Simulation(load_fleet(shipped("small")), START).until(START + 600 * S)
    stamps = [r.ts for r in readings]
    assert stamps == sorted(stamps)
    assert stamps[-1] <= START + 600 * S


def test_until_in_steps_equals_until_at_once() -> None:
    """Asking in many small steps gives the same readings as one big step."""
    fleet = load_fleet(shipped("small"))
    stepped = Simulation(fleet, START)
    pieces = [r for t in range(1, 301) for r in stepped.until(START + t * S)]
    assert pieces == Simulation(fleet, START).until(START + 300 * S)


def test_each_asset_publishes_at_its_rate() -> None:
    """An asset at 2 readings/s gives 20 readings in 10 s, one at 1/s gives 10, seq 1.. on."""
    site = SiteSpec(
        name="s",
        assets=[
            AssetSpec(id="fast", kind="conveyor", rate=2),
            AssetSpec(id="slow", kind="conveyor"),
        ],
    )
    readings = Simulation(FleetSpec(sites=[site]), START).until(START + 10 * S - 1)
    fast = [r.seq for r in readings if r.asset == "fast"]
    slow = [r.seq for r in readings if r.asset == "slow"]
    assert (fast, slow) == (list(range(1, 21)), list(range(1, 11)))


def test_payloads_follow_the_telemetry_contract() -> None:
    """Each payload has an RFC 3339 ms ``ts``, the kind, ``seq`` and 1..64 finite named metrics."""
    readings = Simulation(load_fleet(shipped("small")), START).until(START + 30 * S)
    assert len(readings) == 12 * 30  # the small fleet's 12 assets, one reading a second
    for reading in readings:
        payload = reading.payload()
        assert set(payload) == {"ts", "kind", "seq", "metrics"}
        assert RFC3339_MS.match(payload["ts"])
        assert payload["kind"] == reading.kind
        assert 1 <= len(payload["metrics"]) <= 64
        for name, value in payload["metrics"].items():
            assert NAME.match(name) and isinstance(value, float) and math.isfinite(value)
        assert 0.0 <= payload["metrics"]["utilization"] <= 1.0


def test_assets_with_one_name_at_two_sites_differ() -> None:
    """Each asset has its own generator: ``cnc-1`` at berlin and at lyon read differently."""
    readings = Simulation(load_fleet(shipped("small")), START).until(START + 120 * S)
    berlin = [r.metrics for r in readings if (r.site, r.asset) == ("berlin", "cnc-1")]
    lyon = [r.metrics for r in readings if (r.site, r.asset) == ("lyon", "cnc-1")]
    assert berlin != lyon
