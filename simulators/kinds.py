"""Asset kinds and their physics: duty cycles, loads, lagging temperatures, noise, ambient.

Each kind is a small state machine stepped once per reading. A Markov chain switches the duty
state (idle, running, changeover); the state sets the load (``utilization``, 0..1), the load
drives currents, speeds and pressures directly and temperatures through a first-order lag;
every sensor adds Gaussian noise, and the ambient temperature swings slowly over 24 hours.

The plausible range of every metric of every kind is data (`RANGES`), so tests and users can
check a healthy stream against it. Faults (`simulators.faults`) act on the metrics afterwards;
the roles table (`ROLES`) says which metric plays temperature, current, vibration or pressure.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, get_args

Kind = Literal["cnc-mill", "3d-printer", "injection-moulder", "air-compressor", "conveyor"]
KINDS: tuple[Kind, ...] = get_args(Kind)

DutyState = Literal["idle", "running", "changeover"]

# Plausible ranges of a healthy machine (datasheet-ish values for small shop-floor equipment).
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "cnc-mill": {
        "spindle_rpm": (0.0, 24_000.0),
        "motor_current_a": (0.0, 30.0),
        "vibration_rms": (0.0, 4.0),  # mm/s, ISO 10816 class I "good" ends near 0.7..2.8
        "spindle_temp_c": (5.0, 75.0),
        "utilization": (0.0, 1.0),
    },
    "3d-printer": {
        "nozzle_temp_c": (5.0, 240.0),
        "bed_temp_c": (5.0, 75.0),
        "extruder_current_a": (0.0, 1.5),
        "utilization": (0.0, 1.0),
    },
    "injection-moulder": {
        "barrel_temp_c": (150.0, 250.0),
        "injection_pressure_bar": (0.0, 1_500.0),
        "cycle_time_s": (0.0, 60.0),
        "utilization": (0.0, 1.0),
    },
    "air-compressor": {
        "discharge_pressure_bar": (5.5, 8.5),
        "motor_current_a": (0.0, 60.0),
        "oil_temp_c": (5.0, 95.0),
        "utilization": (0.0, 1.0),
    },
    "conveyor": {
        "belt_speed_mps": (0.0, 2.0),
        "motor_current_a": (0.0, 8.0),
        "vibration_rms": (0.0, 2.5),
        "utilization": (0.0, 1.0),
    },
}

# The metric a sensor fault hits when the fault names none.
MAIN_METRIC: dict[str, str] = {
    "cnc-mill": "spindle_temp_c",
    "3d-printer": "nozzle_temp_c",
    "injection-moulder": "barrel_temp_c",
    "air-compressor": "discharge_pressure_bar",
    "conveyor": "motor_current_a",
}


@dataclass(frozen=True, slots=True)
class Roles:
    """Which metric of a kind plays each physical role (None: the kind has no such sensor)."""

    temperature: str | None
    current: str | None
    vibration: str | None
    pressure: str | None


ROLES: dict[str, Roles] = {
    "cnc-mill": Roles("spindle_temp_c", "motor_current_a", "vibration_rms", None),
    "3d-printer": Roles("nozzle_temp_c", "extruder_current_a", None, None),
    # A moulder's hydraulic pump current is not among its sensors: a leak shows as a longer cycle.
    "injection-moulder": Roles("barrel_temp_c", None, None, "injection_pressure_bar"),
    "air-compressor": Roles("oil_temp_c", "motor_current_a", None, "discharge_pressure_bar"),
    "conveyor": Roles(None, "motor_current_a", "vibration_rms", None),
}

# Mean time in each duty state, seconds, and where the chain goes next (probabilities).
# Shop-floor figures: a job runs for about three quarters of an hour, a changeover (tool or
# mould change, material swap, first-article check) takes about ten minutes, and a machine
# waits about twenty minutes between orders. Each spell's length is exponential around
# its mean, so some last a few minutes and some well over an hour.
_DWELL_S: dict[DutyState, float] = {"idle": 1200.0, "running": 2700.0, "changeover": 600.0}
_NEXT: dict[DutyState, tuple[tuple[DutyState, float], ...]] = {
    "idle": (("running", 0.8), ("changeover", 0.2)),
    "running": (("idle", 0.4), ("changeover", 0.6)),
    "changeover": (("running", 0.9), ("idle", 0.1)),
}
#: Window (s) of the reported utilization: a ten-minute average of the load.
_UTIL_TAU_S = 600.0
_DAY_S = 86_400
_NS = 1_000_000_000


def ambient_c(t_ns: int) -> float:
    """Shop-floor temperature at a time: 20 °C ± 4 °C, warmest at 15:00 UTC.

    Examples
    --------
    >>> round(ambient_c(15 * 3600 * 1_000_000_000), 1)
    24.0
    >>> round(ambient_c(3 * 3600 * 1_000_000_000), 1)
    16.0
    """
    seconds = (t_ns // _NS) % _DAY_S
    return 20.0 + 4.0 * math.sin(2 * math.pi * (seconds - 9 * 3600) / _DAY_S)


class AssetPhysics:
    """The healthy physics of one asset, stepped once per reading.

    Deterministic for a given ``rng``: every random draw comes from it, in a fixed order.

    Parameters
    ----------
    kind
        One of `KINDS`.
    rng
        The asset's own random generator (seeded from the fleet seed and the asset's name).
    t_ns
        The simulated start time; lagging temperatures start settled at that time's ambient.

    Examples
    --------
    >>> physics = AssetPhysics("conveyor", random.Random(7), 0)
    >>> sorted(physics.step(1_000_000_000, 1.0))
    ['belt_speed_mps', 'motor_current_a', 'utilization', 'vibration_rms']
    """

    __slots__ = ("_job", "_lags", "_rng", "_utilization", "kind", "load", "state")

    def __init__(self, kind: str, rng: random.Random, t_ns: int) -> None:
        if kind not in RANGES:
            raise ValueError(f"unknown asset kind {kind!r}: use one of {', '.join(KINDS)}")
        self.kind = kind
        self._rng = rng
        self.state: DutyState = "running" if rng.random() < 0.6 else "idle"
        self._job = rng.random()  # the current job's character (speed, pressure, cycle), 0..1
        self.load = self._load()
        self._utilization = self.load
        ambient = ambient_c(t_ns)
        # Start settled: each lag at the target of the first state, so no start-up transient.
        self._lags: dict[str, float] = {
            name: target for name, (target, _tau) in self._lag_targets(ambient).items()
        }

    def step(self, t_ns: int, dt: float) -> dict[str, float]:
        """Advance ``dt`` seconds to ``t_ns`` and return the metrics read there."""
        self._switch(dt)
        ambient = ambient_c(t_ns)
        for name, (target, tau) in self._lag_targets(ambient).items():
            value = self._lags[name]
            self._lags[name] = value + (target - value) * (1.0 - math.exp(-dt / tau))
        metrics = _READ[self.kind](self, ambient)
        # Utilization as a controller reports it: the load averaged over the last minutes
        # (an exponential window), not the state of this second.
        self._utilization += (self.load - self._utilization) * (1.0 - math.exp(-dt / _UTIL_TAU_S))
        metrics["utilization"] = round(self._utilization, 4)
        return metrics

    # ---- duty cycle ----

    def _switch(self, dt: float) -> None:
        rng = self._rng
        if rng.random() >= 1.0 - math.exp(-dt / _DWELL_S[self.state]):
            return
        draw = rng.random()
        choices = _NEXT[self.state]
        self.state = choices[-1][0]
        for state, probability in choices:
            draw -= probability
            if draw <= 0:
                self.state = state
                break
        self._job = rng.random()
        self.load = self._load()

    def _load(self) -> float:
        if self.state == "running":
            return 0.6 + 0.35 * self._job
        if self.state == "changeover":
            return 0.2 + 0.1 * self._job
        return 0.03 + 0.04 * self._job

    def _lag_targets(self, ambient: float) -> dict[str, tuple[float, float]]:
        """Each lagging temperature's target (°C) and time constant (s) in this state."""
        kind, load, state = self.kind, self.load, self.state
        if kind == "cnc-mill":
            return {"spindle": (ambient + 40.0 * load, 600.0)}
        if kind == "3d-printer":
            nozzle = {"running": 215.0, "changeover": 190.0, "idle": ambient}[state]
            bed = ambient if state == "idle" else 60.0
            return {"nozzle": (nozzle, 20.0), "bed": (bed, 180.0)}
        if kind == "injection-moulder":
            barrel = {"running": 230.0, "changeover": 215.0, "idle": 200.0}[state]
            return {"barrel": (barrel, 400.0)}
        if kind == "air-compressor":
            return {"oil": (ambient + 55.0 * load, 900.0)}
        return {}

    # ---- sensors ----

    def noisy(self, value: float, sigma: float) -> float:
        """``value`` plus Gaussian sensor noise, never below zero."""
        return max(0.0, value + self._rng.gauss(0.0, sigma))


def _cnc(p: AssetPhysics, ambient: float) -> dict[str, float]:
    rpm = 8_000.0 + 10_000.0 * p._job if p.state == "running" else 0.0
    return {
        "spindle_rpm": round(p.noisy(rpm, 0.003 * rpm), 1),
        "motor_current_a": round(p.noisy(1.5 + 18.0 * p.load, 0.25), 3),
        "vibration_rms": round(p.noisy(0.25 + 1.8 * p.load, 0.04), 4),
        "spindle_temp_c": round(p.noisy(p._lags["spindle"], 0.3), 2),
    }


def _printer(p: AssetPhysics, ambient: float) -> dict[str, float]:
    extruding = p.state == "running"
    return {
        "nozzle_temp_c": round(p.noisy(p._lags["nozzle"], 0.6), 2),
        "bed_temp_c": round(p.noisy(p._lags["bed"], 0.3), 2),
        "extruder_current_a": round(p.noisy(0.3 + 0.6 * p.load if extruding else 0.05, 0.02), 4),
    }


def _moulder(p: AssetPhysics, ambient: float) -> dict[str, float]:
    moulding = p.state == "running"
    pressure = 900.0 + 400.0 * p._job if moulding else 0.0
    cycle = 20.0 + 20.0 * p._job if moulding else 0.0
    return {
        "barrel_temp_c": round(p.noisy(p._lags["barrel"], 0.8), 2),
        "injection_pressure_bar": round(p.noisy(pressure, 0.01 * pressure), 1),
        "cycle_time_s": round(p.noisy(cycle, 0.01 * cycle), 3),
    }


def _compressor(p: AssetPhysics, ambient: float) -> dict[str, float]:
    return {
        "discharge_pressure_bar": round(p.noisy(7.6 - 0.9 * p.load, 0.04), 3),
        "motor_current_a": round(p.noisy(6.0 + 40.0 * p.load, 0.5), 2),
        "oil_temp_c": round(p.noisy(p._lags["oil"], 0.3), 2),
    }


def _conveyor(p: AssetPhysics, ambient: float) -> dict[str, float]:
    speed = {"running": 0.8 + 0.7 * p._job, "changeover": 0.3, "idle": 0.0}[p.state]
    return {
        "belt_speed_mps": round(p.noisy(speed, 0.01), 3),
        "motor_current_a": round(p.noisy(0.8 + 5.0 * p.load, 0.08), 3),
        "vibration_rms": round(p.noisy(0.15 + 0.9 * speed, 0.03), 4),
    }


_READ = {
    "cnc-mill": _cnc,
    "3d-printer": _printer,
    "injection-moulder": _moulder,
    "air-compressor": _compressor,
    "conveyor": _conveyor,
}
