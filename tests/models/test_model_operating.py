"""The operating-state model (the default detector): states, loads, relations, teaching.

Machines here are small seeded physics: a load that switches between states and drives the
metrics, some of them through a lag, with sensor noise. The default profile (warm-up 400)
judges them through `AssetModel`, as the pipeline does.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable, Iterator

import pytest
from modelkit import ts

from models.asset import AssetModel
from models.base import Verdict
from models.evidence import _anchored
from models.operating import OperatingStates
from models.settings import DetectorSpec, ProfileSettings
from models.settling import track_changes

Reading = dict[str, float]


def _mill(rng: random.Random, loads: Callable[[int], float]) -> Iterator[Reading]:
    """A mill whose current and vibration follow the load; the spindle warms with a lag."""
    temp = 20.0 + 40.0 * loads(0)
    for i in range(1_000_000):
        load = loads(i)
        temp += (20.0 + 40.0 * load - temp) / 300.0  # a 300-reading thermal lag
        yield {
            "current": 1.5 + 18.0 * load + rng.gauss(0, 0.25),
            "vibration": 0.25 + 1.8 * load + rng.gauss(0, 0.04),
            "spindle_temp": temp + rng.gauss(0, 0.3),
        }


def _printer(rng: random.Random, printing: Callable[[int], bool]) -> Iterator[Reading]:
    """A printer: the nozzle heats (a 20-reading lag) and the extruder draws current to print."""
    nozzle = 215.0 if printing(0) else 22.0
    for i in range(1_000_000):
        on = printing(i)
        nozzle += ((215.0 if on else 22.0) - nozzle) / 20.0
        yield {
            "nozzle": nozzle + rng.gauss(0, 0.6),
            "extruder": (0.7 if on else 0.05) + rng.gauss(0, 0.02),
        }


def _compressor(
    rng: random.Random,
    loads: Callable[[int], float],
    spikes: Callable[[int], float] = lambda i: 0.0,
) -> Iterator[Reading]:
    """A compressor: pressure falls a little and current rises with the load.

    The oil warms with a 900-reading lag; ``spikes`` is the share of readings on which the
    current spikes.
    """
    oil = 20.0 + 55.0 * loads(0)
    for i in range(1_000_000):
        load = loads(i)
        oil += (20.0 + 55.0 * load - oil) / 900.0
        current = 6.0 + 40.0 * load + rng.gauss(0, 0.5)
        yield {
            # 0.45 bar between loads is 11 noise units but a few per cent of the level
            "pressure": 7.6 - 0.9 * load + rng.gauss(0, 0.04),
            "current": current * (2.5 if rng.random() < spikes(i) else 1.0),
            "oil_temp": oil + rng.gauss(0, 0.3),
        }


def _moulder(rng: random.Random, jobs: Callable[[int], float | None]) -> Iterator[Reading]:
    """A moulder: injection pressure and cycle time set by the job (None: idle, both 0).

    The barrel holds 230 °C while moulding and cools towards 200 °C idle (a 400-reading lag).
    """
    barrel = 230.0
    for i in range(1_000_000):
        job = jobs(i)
        barrel += ((200.0 if job is None else 230.0) - barrel) / 400.0
        pressure = 0.0 if job is None else 900.0 + 400.0 * job
        cycle = 0.0 if job is None else 20.0 + 20.0 * job
        yield {
            "barrel": barrel + rng.gauss(0, 0.8),
            "pressure": pressure * (1.0 + rng.gauss(0, 0.01)),
            "cycle": cycle * (1.0 + rng.gauss(0, 0.01)),
        }


def _run(model: AssetModel, readings: Iterator[Reading], start: int, n: int) -> list[Verdict]:
    return [model.process(ts(start + i), next(readings)) for i in range(n)]


def _default() -> AssetModel:
    return AssetModel(ProfileSettings(name="default"))


def test_a_load_never_seen_raises_no_alarm() -> None:
    """Jobs at two loads in the warm-up, then a third load: nothing is flagged."""
    loads = [0.6, 0.9]
    mill = _mill(random.Random(1), lambda i: loads[(i // 100) % 2] if i < 400 else 0.75)
    model = _default()
    _run(model, mill, 0, 400)
    verdicts = _run(model, mill, 400, 2000)
    assert not any(v.anomalous for v in verdicts)


def test_a_first_change_of_state_after_warm_up_raises_no_alarm() -> None:
    """Running all through the warm-up, then idle (the spindle cools for minutes): no flag."""
    mill = _mill(random.Random(2), lambda i: 0.85 if i < 700 else 0.05)
    model = _default()
    verdicts = _run(model, mill, 0, 2500)
    assert not any(v.anomalous for v in verdicts)


def test_states_seen_before_raise_no_alarm() -> None:
    """A printer that prints and idles in turns keeps doing so: no flag in 3,000 readings."""
    printer = _printer(random.Random(3), lambda i: (i // 250) % 2 == 0)
    model = _default()
    verdicts = _run(model, printer, 0, 3400)
    assert not any(v.anomalous for v in verdicts[400:])


def test_a_temperature_still_approaching_its_new_level_raises_no_alarm() -> None:
    """Running all through the warm-up, then idle for 40 minutes: no flag.

    The spindle cools with a 900-reading lag: it slows down long before it arrives, and is
    still settling.
    """
    rng = random.Random(6)
    temp = 20.0 + 40.0 * 0.85
    model = _default()
    verdicts = []
    for i in range(500 + 2400):
        load = 0.85 if i < 500 else 0.05
        temp += (20.0 + 40.0 * load - temp) / 900.0
        reading = {
            "current": 1.5 + 18.0 * load + rng.gauss(0, 0.25),
            "vibration": 0.25 + 1.8 * load + rng.gauss(0, 0.04),
            "spindle_temp": temp + rng.gauss(0, 0.3),
        }
        verdicts.append(model.process(ts(i), reading))
    assert not any(v.anomalous for v in verdicts)


def test_a_change_of_state_small_beside_a_metric_s_level_raises_no_alarm() -> None:
    """Running all through the warm-up, then a changeover at a third of the load: no flag.

    The pressure moves by a few per cent of its level (11 of its noise units, under its step
    size) as the current halves: a change of state, not the current leaving the one state
    seen.
    """
    compressor = _compressor(random.Random(6), lambda i: 0.85 if i < 500 else 0.25)
    model = _default()
    verdicts = _run(model, compressor, 0, 500 + 1200)
    assert not any(v.anomalous for v in verdicts)


def test_a_job_never_seen_after_a_long_idle_spell_raises_no_alarm() -> None:
    """Moulding one job in the warm-up, idle for 40 minutes, then another job: no flag.

    The pressure and the cycle time step from 0 to levels never seen, far from every state
    in their noise units but not in the units the states differ by (a twentieth of their
    range): right after the change they may land that far off.
    """
    moulder = _moulder(random.Random(3), lambda i: 0.8 if i < 600 else None if i < 3000 else 0.2)
    model = _default()
    verdicts = _run(model, moulder, 0, 3000 + 1200)
    assert not any(v.anomalous for v in verdicts)


def test_readings_right_after_a_change_of_state_teach_it_unless_flagged() -> None:
    """The fast window after a change made by steps learns readings under the threshold.

    With a guard so strict that nothing else is learned, the new state is still learned
    from the readings that follow the change, so it is not flagged once the window ends.
    """
    compressor = _compressor(random.Random(6), lambda i: 0.85 if i < 500 else 0.25)
    model = AssetModel(
        ProfileSettings(
            name="strict",
            detectors=(DetectorSpec(type="operating_states", params={"guard": 1e-6}),),
        )
    )
    verdicts = _run(model, compressor, 0, 500 + 1200)
    assert not any(v.anomalous for v in verdicts[560:])


def test_a_smooth_metric_far_from_the_states_seen_is_not_named() -> None:
    """Vibration grown while the utilization (an average, noiseless) rises on: vibration named.

    A smooth metric locates the operating state but is never evidence, so an alert does not
    send staff to look at it.
    """
    rng = random.Random(2)

    def reading(i: int, extra: float = 0.0) -> Reading:
        return {
            "current": 10.0 + rng.gauss(0, 0.25),
            "vibration": 1.0 + extra + rng.gauss(0, 0.04),
            "utilization": 0.3 + 0.0004 * i,
        }

    model = _default()
    for i in range(600):
        model.process(ts(i), reading(i))
    worn = [model.process(ts(600 + i), reading(600 + i, 0.5)) for i in range(200)]
    flagged = [v for v in worn if v.anomalous]
    assert flagged
    assert {v.top_metric for v in flagged} == {"vibration"}


def test_a_current_rising_through_its_spikes_is_flagged() -> None:
    """A motor fault, the current rising through its spikes: flagged within minutes.

    The current rises 15 % over 10 minutes and spikes on a growing share of readings. Spikes
    are not steps (a step holds for two readings), so they do not hold the current in its
    grace; the current is named.
    """
    rng = random.Random(7)

    def faulty(i: int) -> float:
        return max(0.0, min(1.0, (i - 600) / 600))

    compressor = _compressor(
        rng, lambda i: 0.8, lambda i: 0.05 + 0.3 * faulty(i) if i >= 600 else 0.0
    )
    model = _default()
    verdicts = []
    for i in range(1000):
        reading = next(compressor)
        reading["current"] *= 1.0 + 0.15 * faulty(i)
        verdicts.append(model.process(ts(i), reading))
    assert not any(v.anomalous for v in verdicts[:600])
    flagged = [i for i, v in enumerate(verdicts) if v.anomalous]
    assert flagged and flagged[0] < 600 + 240
    assert verdicts[flagged[0]].top_metric == "current"


@pytest.mark.xfail(
    strict=True,
    reason="a metric that jumped with a change of state settles for as long as it moves the "
    "same way no faster than its average pace since the change, so a climb that begins as it "
    "arrives is taken for settling and learned. Ending the settling of every metric that "
    "jumped once it arrived catches this, but quadrupled the false alarms on the simulated "
    "fleet (37 to 154 on 2 sites x 6 h: printers' bed and nozzle after short idle spells). "
    "Open in issue 11's closing note",
)
def test_a_temperature_that_jumped_with_a_change_and_climbs_on_is_flagged() -> None:
    """Overheating as a job starts: flagged within 6 minutes, the nozzle named.

    The nozzle reaches its printing temperature, then climbs on by 35 °C over 15 minutes. A
    metric that jumped with a change has arrived; it does not settle any further, so the
    climb is judged.
    """
    rng = random.Random(9)
    printer = _printer(rng, lambda i: (i // 250) % 2 == 0)
    model = _default()
    _run(model, printer, 0, 1500)  # idle from 1,250; printing again from 1,500
    verdicts = []
    for i in range(900):
        reading = next(printer)
        reading["nozzle"] += 35.0 * max(0.0, i - 60) / 900
        verdicts.append(model.process(ts(1500 + i), reading))
    flagged = [i for i, v in enumerate(verdicts) if v.anomalous]
    assert flagged and flagged[0] < 60 + 360
    assert verdicts[flagged[0]].top_metric == "nozzle"


def _printer_with_hot_idle_nozzle(seed: int) -> tuple[AssetModel, list[Verdict]]:
    """A printer that learned printing and idling, then idles with its nozzle at 215 °C."""
    rng = random.Random(seed)
    printer = _printer(rng, lambda i: (i // 250) % 2 == 0)
    model = _default()
    _run(model, printer, 0, 1300)  # 50 readings into an idle spell (1,250 to 1,500)
    hot = []
    for i in range(120):
        reading = next(printer)
        reading["nozzle"] = 215.0 + rng.gauss(0, 0.6)
        hot.append(model.process(ts(1300 + i), reading))
    return model, hot


def test_a_relation_that_breaks_inside_the_normal_range_is_flagged() -> None:
    """The nozzle hot while the printer idles (215 °C is its printing temperature): flagged."""
    _, hot = _printer_with_hot_idle_nozzle(4)
    assert hot[-1].anomalous
    assert hot[-1].top_metric == "nozzle"


def test_current_rising_while_flow_and_pressure_hold_is_flagged() -> None:
    """A pump whose current rises 15 % while flow and pressure hold: flagged, current named."""
    rng = random.Random(5)
    model = _default()

    def pump(i: int, extra: float = 0.0) -> Reading:
        speed = (0.7, 0.9)[(i // 150) % 2]
        return {
            "flow": 30.0 * speed + rng.gauss(0, 0.2),
            "pressure": 2.0 + 3.0 * speed**2 + rng.gauss(0, 0.03),
            "current": (8.0 + 10.0 * speed**3) * (1.0 + extra) + rng.gauss(0, 0.1),
        }

    for i in range(1275):  # half-way through a spell at 0.7 of full speed
        model.process(ts(i), pump(i))
    verdicts = [model.process(ts(1275 + i), pump(1275, extra=0.15)) for i in range(120)]
    assert verdicts[-1].anomalous
    assert verdicts[-1].top_metric == "current"


def test_a_normal_verdict_stops_the_same_pattern_from_flagging() -> None:
    """Taught that the hot idle nozzle is normal, the model no longer flags the same pattern."""
    model, hot = _printer_with_hot_idle_nozzle(6)
    assert hot[-1].anomalous
    taught = model.accept(ts(1300), ts(1420))
    assert taught > 0
    rng = random.Random(7)
    again = [
        model.process(
            ts(1420 + i),
            {"nozzle": 215.0 + rng.gauss(0, 0.6), "extruder": 0.05 + rng.gauss(0, 0.02)},
        )
        for i in range(120)
    ]
    assert not any(v.anomalous for v in again)


def test_a_model_stays_small() -> None:
    """Eight metrics through warm-up and 20,000 readings of changing states: under 32 KiB."""
    rng = random.Random(8)
    model = _default()
    for i in range(20_400):
        load = (0.05, 0.3, 0.7, 0.95)[(i // 700) % 4]
        reading = {f"m{k}": (k + 1) * load + rng.gauss(0, 0.01 * (k + 1)) for k in range(8)}
        model.process(ts(i), reading)
    assert len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) < 32 * 1024


def test_a_restored_model_goes_on_exactly_as_the_original() -> None:
    """A checkpoint taken mid-stream scores the rest of the stream as the original does."""
    mill = _mill(random.Random(9), lambda i: (0.2, 0.8)[(i // 300) % 2])
    model = _default()
    _run(model, mill, 0, 1000)
    restored = pickle.loads(pickle.dumps(model))
    rest = [next(mill) for _ in range(500)]
    original = [model.process(ts(1000 + i), r) for i, r in enumerate(rest)]
    again = [restored.process(ts(1000 + i), r) for i, r in enumerate(rest)]
    assert original == again


def _two_load_mill(readings: int) -> tuple[AssetModel, OperatingStates, Iterator[Reading]]:
    """A mill that ran jobs at two loads for `readings`: its model, detector and readings."""
    mill = _mill(random.Random(9), lambda i: (0.2, 0.8)[(i // 300) % 2])
    model = _default()
    _run(model, mill, 0, readings)
    detector = model.detectors[0]
    assert isinstance(detector, OperatingStates)
    return model, detector, mill


def test_a_checkpoint_saved_before_the_change_of_state_constants_still_scores() -> None:
    """A model pickled without the per-metric constants added later loads and scores on."""
    model, detector, mill = _two_load_mill(1000)
    # as a checkpoint of an earlier meshwatch holds it
    del detector._nudge, detector._widen, detector._anchor, detector.since_onset
    restored = pickle.loads(pickle.dumps(model))
    verdicts = _run(restored, mill, 1000, 600)
    assert not any(v.anomalous for v in verdicts)


def test_bad_parameters_are_refused() -> None:
    """A rate outside (0, 1] or a non-positive threshold floor is a ValueError naming it."""
    for kwargs in ({"lam": 0.0}, {"lam_slow": 1.5}, {"c": 0.0}):
        try:
            OperatingStates(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            assert next(iter(kwargs)) in str(exc)
        else:
            raise AssertionError(f"{kwargs} was accepted")


def test_scores_are_calibrated_to_the_threshold() -> None:
    """Healthy readings score low; every score stays in [0, 1)."""
    mill = _mill(random.Random(10), lambda i: 0.5 + 0.3 * math.sin(i / 50.0))
    verdicts = _run(_default(), mill, 0, 1400)[400:]
    assert all(0.0 <= v.score < 1.0 for v in verdicts)
    assert sorted(v.score for v in verdicts)[len(verdicts) // 2] < 0.3


def _fitted_mill() -> OperatingStates:
    """The default detector of a mill that ran jobs at two loads for 3,000 readings."""
    return _two_load_mill(3000)[1]


def test_a_step_in_the_fast_window_of_a_change_is_part_of_it() -> None:
    """Unloaded, then loaded to a level never seen 20 readings later: one change, in stages.

    The second stage moves one metric alone (the current; the pressure moves under its step
    size): the window after the change runs on from it, so the new level is learned.
    """
    model = _fitted_mill()
    back = list(model.level)
    track_changes(model, 2, 0, 0, back)  # several metrics moved: a change
    for _ in range(20):
        track_changes(model, 0, 0, 0, back)
    track_changes(model, 1, 0, 1, back)  # one metric steps as another stirs
    assert model.since_change == 0


def test_a_lone_step_long_after_a_change_is_the_metric_s_own() -> None:
    """Three minutes after a change began, a step of one metric is judged as its own."""
    model = _fitted_mill()
    back = list(model.level)
    track_changes(model, 2, 0, 0, back)
    for _ in range(200):
        track_changes(model, 1 if _ % 50 == 49 else 0, 0, 1, back)
    assert model.since_change > 0


def test_a_metric_is_expected_along_its_relation_from_the_state_it_is_in() -> None:
    """Beyond the states seen, a metric that follows another moves from its state with it.

    The expectation is the state's level plus the relation's slope times how far the
    partner stands from its level in that state: a temperature 6 °C up as the load it
    follows went up by 0.15 of its range is explained; 6 °C up alone is not.
    """
    model = _fitted_mill()
    assert model.relations is not None
    j = model.names.index("spindle_temp")
    relation = model.relations.best[j]
    assert relation is not None
    partner, slope = relation[0], relation[1][1]
    expected = list(model.level)
    model._expected, model._anchor = expected, [expected[partner]] * len(expected)
    moved = 3.0 * model._sl[partner] * 10
    model.level = list(expected)
    model.level[partner] += moved
    model.level[j] += slope * moved
    along = [math.inf] * len(expected)
    _anchored(model, along)
    model.level[partner] -= moved
    alone = [math.inf] * len(expected)
    _anchored(model, alone)
    assert along[j] < 1.0 < model.threshold < alone[j]
