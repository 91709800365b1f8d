"""Asset kinds: plausible ranges over a simulated day, duty cycles, lagging temperatures."""

from __future__ import annotations

import random

import pytest

from simulators import kinds
from simulators.fleet import AssetSpec, FleetSpec, SiteSpec
from simulators.kinds import KINDS, MAIN_METRIC, RANGES, ROLES, AssetPhysics
from simulators.simulation import Simulation

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
DAY_NS = 86_400 * 1_000_000_000


def _day(kind: str, assets: int = 4) -> list[dict[str, float]]:
    """A simulated day of `assets` assets of one kind, one reading every 20 s."""
    site = SiteSpec(
        name="s", assets=[AssetSpec(id=f"a{i}", kind=kind, rate=0.05) for i in range(assets)]
    )
    sim = Simulation(FleetSpec(seed=3, sites=[site]), START)
    return [r.metrics for r in sim.until(START + DAY_NS)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_simulated_day_stays_in_the_plausible_ranges(kind: str) -> None:
    """Every metric of a healthy asset stays within its kind's documented range for a day."""
    readings = _day(kind)
    assert len(readings) == 4 * 4320
    for metrics in readings:
        assert set(metrics) == set(RANGES[kind])
        for name, value in metrics.items():
            low, high = RANGES[kind][name]
            assert low <= value <= high, (name, value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_day_visits_every_duty_state(kind: str) -> None:
    """Over a day an asset runs jobs, changes over and idles; utilization spans the range."""
    physics = AssetPhysics(kind, random.Random(3), START)
    states = set()
    loads = []
    for second in range(0, 86_400, 20):
        loads.append(physics.step(START + second * 1_000_000_000, 20.0)["utilization"])
        states.add(physics.state)
    assert states == {"idle", "running", "changeover"}
    assert min(loads) < 0.5 < max(loads)


def test_duty_states_last_tens_of_minutes_as_on_a_real_shop_floor() -> None:
    """Over 30 seeded days, jobs last ~45 min on average, idle spells ~20, changeovers ~10."""
    physics = AssetPhysics("cnc-mill", random.Random(11), START)
    spells: dict[str, list[float]] = {"idle": [], "running": [], "changeover": []}
    state, since, step = physics.state, 0, 20
    for second in range(step, 30 * 86_400, step):
        physics.step(START + second * 1_000_000_000, float(step))
        if physics.state != state:
            spells[state].append((second - since) / 60)
            state, since = physics.state, second
    means = {name: sum(minutes) / len(minutes) for name, minutes in spells.items()}
    assert all(len(minutes) > 100 for minutes in spells.values()), {
        k: len(v) for k, v in spells.items()
    }
    assert 38 <= means["running"] <= 52, means
    assert 16 <= means["idle"] <= 24, means
    assert 8 <= means["changeover"] <= 12, means
    assert all(10 <= minutes <= 60 for minutes in means.values())


def test_temperature_follows_load_with_a_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CNC spindle warms over minutes after it starts running, not at once."""
    for state in ("idle", "running", "changeover"):  # hold each state as set below
        monkeypatch.setitem(kinds._DWELL_S, state, 1e12)
    physics = AssetPhysics("cnc-mill", random.Random(1), START)
    physics.state, physics.load = "idle", 0.05
    for t in range(3600):  # settle at idle
        physics.step(START + t * 1_000_000_000, 1.0)
    physics.state, physics.load = "running", 0.9
    temps = []
    for t in range(3600, 3600 + 1800):
        temps.append(physics.step(START + t * 1_000_000_000, 1.0)["spindle_temp_c"])
    assert temps[10] - temps[0] < 2
    assert temps[-1] - temps[0] > 20


def test_every_kind_documents_its_roles_and_main_metric() -> None:
    """Roles and main metrics name metrics the kind really has."""
    for kind in KINDS:
        assert MAIN_METRIC[kind] in RANGES[kind]
        for metric in (ROLES[kind].temperature, ROLES[kind].current, ROLES[kind].vibration):
            assert metric is None or metric in RANGES[kind]
