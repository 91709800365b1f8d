"""Resolutions always go out (`alerts.dispatch`): a receiver that heard an alert fire hears it end.

The matrix of issue 15: a silence, an inhibition and a shelf, each put on before the alert
fires and after its firing was told, each with no stop, a clean restart or a SIGKILL
(`Plant.crash`) between the muting and the resolution. Muted after the firing was told, the
resolution goes to every receiver that heard it, saying what muted it; muted before, the
alert fires and resolves unheard, and nothing is sent at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import pytest
from plantkit import CNC_A, FAST_ROUTE, Plant, prompt_rules

from alerts.base import State
from alerts.silences import Silence

FIRED = [("mqtt", "anomaly", "cnc-1", "firing"), ("log", "anomaly", "cnc-1", "firing")]
RESOLVED = [("mqtt", "anomaly", "cnc-1", "resolved"), ("log", "anomaly", "cnc-1", "resolved")]

# The warning of cnc-1 is inhibited while its critical ``hot`` fires; the two watch different
# metrics, so the warning can end while the critical alert goes on.
INHIBITED_RULES = """
rules:
  - {name: anomaly, type: limit, condition: vibration_rms > 5, severity: warning}
  - {name: hot, type: limit, condition: spindle_temp_c > 90, severity: critical}
"""
COOL = {"spindle_temp_c": 60.0, "vibration_rms": 1.0}
SHAKING = {"spindle_temp_c": 60.0, "vibration_rms": 8.0}
HOT = {"spindle_temp_c": 95.0, "vibration_rms": 1.0}
HOT_SHAKING = {"spindle_temp_c": 95.0, "vibration_rms": 8.0}

# Told 30 s after it fires: a shelf put on within that time comes before anyone heard of it.
WAITING_ROUTE = FAST_ROUTE.replace("group_wait: 0s", "group_wait: 30s")


class Muting(ABC):
    """How one kind of muting is set up on a plant whose cnc-1 fires the ``anomaly`` warning."""

    cause: str
    route = FAST_ROUTE
    rules: Any = None

    def fire(self, p: Plant) -> None:
        """Make cnc-1's ``anomaly`` alert fire."""
        p.run(3, faulty=[CNC_A])

    @abstractmethod
    def mute(self, p: Plant) -> None:
        """Put the muting on."""

    def resolve(self, p: Plant) -> None:
        """Let the alert resolve while the muting still holds."""
        p.run(20)


class Silenced(Muting):
    cause = "silenced"

    def __init__(self) -> None:
        self.rules = prompt_rules()

    def mute(self, p: Plant) -> None:
        matchers = ["site=plant-a", "asset=cnc-1"]
        p.desk.add_silence(Silence.create(matchers, p.wall.now, p.wall.now + 3600, "ana", "pm"))


class Inhibited(Muting):
    cause = "inhibited"
    rules = INHIBITED_RULES

    def __init__(self) -> None:
        self.temp = COOL

    def fire(self, p: Plant) -> None:
        p.run(3, metrics={CNC_A: HOT_SHAKING if self.temp is HOT else SHAKING})

    def mute(self, p: Plant) -> None:
        self.temp = HOT
        p.run(2, metrics={CNC_A: HOT_SHAKING})

    def resolve(self, p: Plant) -> None:
        p.run(5, metrics={CNC_A: HOT})  # the warning ends; the critical alert fires on
        assert p.open_alert("hot", CNC_A).state is State.FIRING


class Shelved(Muting):
    cause = "shelved"
    route = WAITING_ROUTE

    def __init__(self) -> None:
        self.rules = prompt_rules()

    def mute(self, p: Plant) -> None:
        alert = p.open_alert("anomaly", CNC_A)
        p.desk.shelve(alert.id, "ana", 3600.0, "sensor swap tomorrow")

    def resolve(self, p: Plant) -> None:
        p.run(20)
        p.run(40)  # past the group's wait, had it been told


MUTINGS = [Silenced, Inhibited, Shelved]
STOPS = ["none", "restart", "crash"]


def _plant(plant: Callable[..., Plant], muting: Muting) -> Plant:
    return plant(rules=muting.rules, route=muting.route)


def _stop(p: Plant, stop: str) -> None:
    if stop != "none":
        getattr(p, stop)()


def _anomaly(p: Plant) -> list[tuple[str, str, str, str]]:
    return [told for told in p.told() if told[1] == "anomaly"]


def _resolutions(p: Plant) -> list[dict[str, Any]]:
    return [
        a
        for n in p.outbox()
        for a in n.alerts
        if a["rule"] == "anomaly" and a["state"] == "resolved"
    ]


@pytest.mark.parametrize("stop", STOPS, ids=["no-stop", "restart", "sigkill"])
@pytest.mark.parametrize("kind", MUTINGS, ids=lambda k: k.cause)
def test_muted_after_it_was_told_the_resolution_still_goes_out(
    plant: Callable[..., Plant], kind: type[Muting], stop: str
) -> None:
    """Told it fired, then muted: every receiver hears it resolve, marked with the cause."""
    muting = kind()
    p = _plant(plant, muting)
    muting.fire(p)
    if isinstance(muting, Shelved):
        p.run(30, faulty=[CNC_A])  # past the group's wait: told
    assert _anomaly(p) == FIRED
    muting.mute(p)
    _stop(p, stop)
    muting.resolve(p)
    assert _anomaly(p) == FIRED + RESOLVED
    assert [(a["muted"], a["silenced"]) for a in _resolutions(p)] == [
        (muting.cause, muting.cause == "silenced")
    ] * 2


@pytest.mark.parametrize("stop", STOPS, ids=["no-stop", "restart", "sigkill"])
@pytest.mark.parametrize("kind", MUTINGS, ids=lambda k: k.cause)
def test_fired_and_resolved_while_muted_is_never_sent(
    plant: Callable[..., Plant], kind: type[Muting], stop: str
) -> None:
    """Muted before anyone heard it fire: it fires and resolves unheard, recorded all the same."""
    muting = kind()
    p = _plant(plant, muting)
    if isinstance(muting, Shelved):
        muting.fire(p)  # a shelf holds a firing alert: shelved before its group's first flush
        muting.mute(p)
    else:
        muting.mute(p)
        muting.fire(p)
    assert p.open_alert("anomaly", CNC_A).state is State.FIRING
    _stop(p, stop)
    muting.resolve(p)
    assert _anomaly(p) == []
    states = [x.fields["state"] for x in p.points if x.tags["rule"] == "anomaly"]
    assert states == ["firing", "resolved"]


def test_a_resolution_heard_unmuted_carries_no_cause(plant: Callable[..., Plant]) -> None:
    """Nothing muted it: ``muted`` is null and ``silenced`` false, as before."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.run(20)
    assert [(a["muted"], a["silenced"]) for a in _resolutions(p)] == [(None, False)] * 2


def test_a_silence_keeps_the_repeats_back_but_not_the_resolution(
    plant: Callable[..., Plant],
) -> None:
    """Silenced while firing: no repeats for the silence's length, then the resolution."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)  # repeats every 30 s
    p.run(3, faulty=[CNC_A])
    Silenced().mute(p)
    p.run(120, faulty=[CNC_A])
    assert _anomaly(p) == FIRED
    p.run(20)
    assert _anomaly(p) == FIRED + RESOLVED
