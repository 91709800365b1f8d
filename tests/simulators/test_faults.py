"""Fault injection: each fault bends the metrics it should, and its ground truth is right."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from simulators.errors import FaultOptionError, FleetError
from simulators.faults import parse_fault_option
from simulators.fleet import AssetSpec, FaultSpec, FleetSpec, SiteSpec
from simulators.groundtruth import GroundTruth, read_labels, write_labels
from simulators.kinds import RANGES
from simulators.simulation import SimReading, Simulation

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
ONSET, DEVELOP = 600, 600  # seconds
RUN = 1800  # seconds of each stream, one reading a second


def _run(kind: str, *faults: FaultSpec, seconds: int = RUN) -> dict[int, SimReading]:
    """One asset for `seconds` at 1 reading/s, by timestamp."""
    site = SiteSpec(name="s", assets=[AssetSpec(id="a", kind=kind)])
    sim = Simulation(FleetSpec(seed=5, sites=[site], faults=list(faults)), START)
    return {r.ts: r for r in sim.until(START + seconds * S - 1)}


def _fault(kind: str, type_: str, **extra: object) -> tuple[dict[int, SimReading], ...]:
    """(healthy, faulty) streams of the same asset and seed."""
    spec = FaultSpec.model_validate(
        {"site": "s", "asset": "a", "type": type_, "onset": ONSET, "develop": DEVELOP, **extra}
    )
    return _run(kind), _run(kind, spec)


def _pairs(
    healthy: dict[int, SimReading], faulty: dict[int, SimReading], metric: str, after: int
) -> list[tuple[float, float]]:
    """(healthy, faulty) values of `metric` at timestamps `after` s or later: one a second.

    It checks that the faulty stream has every one of those readings, so that a test looping
    over the pairs cannot pass on none.
    """
    cut = START + after * S
    pairs = [(healthy[t].metrics[metric], faulty[t].metrics[metric]) for t in faulty if t >= cut]
    assert len(pairs) == RUN - after
    return pairs


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_a_fault_changes_nothing_before_its_onset() -> None:
    """Readings before the onset are those of the healthy twin, exactly."""
    healthy, faulty = _fault("cnc-mill", "bearing_wear")
    before = [t for t in healthy if t < START + ONSET * S]
    assert before
    assert all(healthy[t] == faulty[t] for t in before)


def test_bearing_wear_raises_vibration_then_temperature() -> None:
    """Vibration grows from the onset; the temperature only in the second half of the ramp."""
    healthy, faulty = _fault("cnc-mill", "bearing_wear")
    developed = _pairs(healthy, faulty, "vibration_rms", ONSET + DEVELOP)
    assert _mean([f for _, f in developed]) > 4 * _mean([h for h, _ in developed])
    early_temp = _pairs(healthy, faulty, "spindle_temp_c", ONSET)[: DEVELOP // 2]
    assert all(abs(f - h) < 1e-6 for h, f in early_temp)
    late_temp = _pairs(healthy, faulty, "spindle_temp_c", ONSET + DEVELOP)
    assert all(f - h == pytest.approx(20.0, abs=1e-3) for h, f in late_temp)


def test_overheating_raises_the_temperature() -> None:
    """An overheating printer's nozzle runs 35 °C hotter once the fault has developed."""
    healthy, faulty = _fault("3d-printer", "overheating")
    for h, f in _pairs(healthy, faulty, "nozzle_temp_c", ONSET + DEVELOP):
        assert f - h == pytest.approx(35.0, abs=1e-3)


def test_motor_fault_makes_the_current_spike() -> None:
    """A motor fault raises the current and makes it spike well above the healthy twin's."""
    healthy, faulty = _fault("cnc-mill", "motor_fault")
    ratios = [f / h for h, f in _pairs(healthy, faulty, "motor_current_a", ONSET + DEVELOP)]
    assert min(ratios) == pytest.approx(1.15, abs=1e-3)
    assert max(ratios) > 2.5
    assert 0.2 < sum(r > 2 for r in ratios) / len(ratios) < 0.5


def test_pressure_leak_drops_pressure_and_raises_current() -> None:
    """A leaking compressor delivers 35 % less pressure while drawing 25 % more current."""
    healthy, faulty = _fault("air-compressor", "pressure_leak")
    for h, f in _pairs(healthy, faulty, "discharge_pressure_bar", ONSET + DEVELOP):
        assert f == pytest.approx(h * 0.65, abs=1e-3)
    for h, f in _pairs(healthy, faulty, "motor_current_a", ONSET + DEVELOP):
        assert f == pytest.approx(h * 1.25, abs=1e-3)


def test_pressure_leak_on_a_moulder_lengthens_its_cycle() -> None:
    """A leaking moulder's injection pressure drops and its cycle time grows."""
    healthy, faulty = _fault("injection-moulder", "pressure_leak")
    for h, f in _pairs(healthy, faulty, "injection_pressure_bar", ONSET + DEVELOP):
        assert f == pytest.approx(h * 0.65, abs=1e-3)
    for h, f in _pairs(healthy, faulty, "cycle_time_s", ONSET + DEVELOP):
        assert f == pytest.approx(h * 1.3, abs=1e-3)


def test_a_stuck_sensor_keeps_its_value_at_the_onset() -> None:
    """From the onset on, the stuck metric repeats the healthy value read at the onset."""
    healthy, faulty = _fault("conveyor", "stuck_sensor", metric="vibration_rms")
    at_onset = healthy[min(t for t in healthy if t >= START + ONSET * S)].metrics["vibration_rms"]
    after = _pairs(healthy, faulty, "vibration_rms", ONSET)
    assert {f for _, f in after} == {at_onset}
    assert len({h for h, _ in after}) > 10


def test_sensor_drift_adds_a_growing_offset() -> None:
    """A drifting sensor reads up to 30 % of its plausible span high, growing over `develop`."""
    healthy, faulty = _fault("cnc-mill", "sensor_drift")
    low, high = RANGES["cnc-mill"]["spindle_temp_c"]
    offsets = [f - h for h, f in _pairs(healthy, faulty, "spindle_temp_c", ONSET)]
    assert offsets[DEVELOP // 2] == pytest.approx(0.15 * (high - low), abs=0.1)
    assert offsets[-1] == pytest.approx(0.3 * (high - low), abs=1e-3)


def test_dropouts_skip_readings_in_bursts() -> None:
    """Dropouts remove runs of consecutive readings after the onset; seq numbers show gaps."""
    healthy, faulty = _fault("conveyor", "dropouts")
    missing = sorted(t for t in healthy if t not in faulty)
    assert missing
    assert min(missing) >= START + ONSET * S
    seqs = [r.seq for r in faulty.values()]
    gaps = [b - a for a, b in itertools.pairwise(seqs)]
    assert max(gaps) >= 4  # a burst is at least 3 readings long
    assert all(faulty[t].seq == healthy[t].seq for t in faulty)


def test_a_sudden_failure_silences_the_asset() -> None:
    """After a sudden failure's onset the asset publishes nothing."""
    healthy, faulty = _fault("air-compressor", "sudden_failure")
    assert max(faulty) < START + ONSET * S <= max(healthy)


def test_a_fault_with_a_duration_ends() -> None:
    """A fault that lasts 5 minutes leaves the readings healthy again after it."""
    healthy, faulty = _fault("3d-printer", "overheating", duration=300)
    ended = START + (ONSET + 300) * S
    after = [t for t in faulty if t >= ended]
    assert len(after) == RUN - (ONSET + 300)
    assert all(faulty[t] == healthy[t] for t in after)
    assert any(faulty[t] != healthy[t] for t in faulty if t < ended)


def test_labels_list_the_faults_that_started(tmp_path: Path) -> None:
    """Labels name each started fault with its onset, its end, or the run's end when open."""
    site = SiteSpec(name="s", assets=[AssetSpec(id="a", kind="cnc-mill")])
    faults = [
        FaultSpec(site="s", asset="a", type="overheating", onset=60, duration=120),
        FaultSpec(site="s", asset="a", type="bearing_wear", onset=300),
        FaultSpec(site="s", asset="a", type="sudden_failure", onset=7200),
    ]
    sim = Simulation(FleetSpec(sites=[site], faults=faults), START)
    sim.until(START + 600 * S)
    assert sim.labels == [
        GroundTruth("s", "a", "overheating", START + 60 * S, START + 180 * S),
        GroundTruth("s", "a", "bearing_wear", START + 300 * S, None),
    ]
    path = tmp_path / "labels.jsonl"
    write_labels(path, sim.labels, run_end=START + 600 * S)
    assert read_labels(path) == [
        GroundTruth("s", "a", "overheating", START + 60 * S, START + 180 * S),
        GroundTruth("s", "a", "bearing_wear", START + 300 * S, START + 600 * S),
    ]


def test_fault_option_parses_every_part() -> None:
    """``SITE/ASSET:TYPE@ONSET+DEVELOP*SEVERITY`` fills the fault spec."""
    fault = parse_fault_option("lyon/printer-1:overheating@1h+90s*0.7")
    assert (fault.site, fault.asset, fault.type) == ("lyon", "printer-1", "overheating")
    assert (fault.onset, fault.develop, fault.severity) == (3600.0, 90.0, 0.7)


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("lyon/printer-1:melting@10m", "type"),
        ("lyon/printer-1:overheating@soon", "invalid duration"),
        ("lyon/printer-1:overheating@10m*2", "severity"),
        ("printer-1:overheating@10m", "use SITE/ASSET:TYPE@ONSET"),
    ],
    ids=["unknown-type", "bad-onset", "severity-above-1", "no-site"],
)
def test_a_bad_fault_option_says_what_is_wrong(option: str, says: str) -> None:
    """A bad ``--fault`` raises one line quoting the option and naming the problem."""
    with pytest.raises(FaultOptionError) as caught:
        parse_fault_option(option)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(option) in message
    assert says in message


def test_an_extra_fault_on_an_unknown_asset_is_refused() -> None:
    """A fault for an asset the fleet does not have is a FleetError naming it."""
    site = SiteSpec(name="s", assets=[AssetSpec(id="a", kind="cnc-mill")])
    with pytest.raises(FleetError, match="no asset 'b' at site 's'"):
        Simulation(
            FleetSpec(sites=[site]),
            START,
            [FaultSpec(site="s", asset="b", type="dropouts", onset=1)],
        )
