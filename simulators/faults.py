"""Fault injection: how each fault type bends an asset's readings, and the ``--fault`` option.

A fault ramps linearly from its onset over ``develop`` seconds to its ``severity`` (0..1], and
acts until ``duration`` ends (or the run does). What each type does, at full severity:

- ``bearing_wear``: vibration x5; in the second half of the ramp the temperature climbs up to
  +20 °C and the current by 10 % (friction).
- ``overheating``: temperature +35 °C.
- ``motor_fault``: current +15 %, and spikes (x2.5) on a growing share of readings.
- ``pressure_leak``: pressure -35 %; the compressor's current +25 %, the moulder's cycle +30 %.
- ``stuck_sensor``: the metric keeps the value it had at the onset.
- ``sensor_drift``: the metric drifts up by 30 % of its plausible span.
- ``dropouts``: readings go missing in bursts of 3..30 (their ``seq`` numbers are skipped).
- ``sudden_failure``: the asset publishes nothing from the onset.

Random draws of faults come from a generator of their own, so a faulty asset's healthy physics
is exactly that of the same asset without the fault.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from simulators.errors import FaultOptionError
from simulators.fleet import FaultSpec
from simulators.kinds import MAIN_METRIC, RANGES, ROLES

_NS = 1_000_000_000
_OPTION = re.compile(
    r"^(?P<site>[^/:@]+)/(?P<asset>[^/:@]+):(?P<type>[a-z_]+)@(?P<onset>[^+*]+)"
    r"(?:\+(?P<develop>[^*]+))?(?:\*(?P<severity>.+))?$"
)


def parse_fault_option(text: str) -> FaultSpec:
    """A fault from ``SITE/ASSET:TYPE@ONSET[+DEVELOP][*SEVERITY]`` (times as ``90s``/``20m``).

    Examples
    --------
    >>> f = parse_fault_option("berlin/cnc-1:bearing_wear@20m+10m*0.5")
    >>> f.site, f.asset, f.type, f.onset, f.develop, f.severity
    ('berlin', 'cnc-1', 'bearing_wear', 1200.0, 600.0, 0.5)
    >>> parse_fault_option("berlin/cnc-1@20m")
    Traceback (most recent call last):
    ...
    simulators.errors.FaultOptionError: bad --fault 'berlin/cnc-1@20m': \
use SITE/ASSET:TYPE@ONSET[+DEVELOP][*SEVERITY], e.g. berlin/cnc-1:bearing_wear@20m+20m*0.8
    """
    usage = (
        "use SITE/ASSET:TYPE@ONSET[+DEVELOP][*SEVERITY], e.g. berlin/cnc-1:bearing_wear@20m+20m*0.8"
    )
    match = _OPTION.match(text.strip())
    if not match:
        raise FaultOptionError(f"bad --fault {text!r}: {usage}", option=text)
    parts = match.groupdict()
    try:
        return FaultSpec.model_validate(
            {
                "site": parts["site"],
                "asset": parts["asset"],
                "type": parts["type"],
                "onset": parts["onset"],
                "develop": parts["develop"] or 0.0,
                "severity": float(parts["severity"]) if parts["severity"] else 1.0,
            }
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            detail = f"{where}: {first['msg'].removeprefix('Value error, ')}"
        else:
            detail = str(exc)
        raise FaultOptionError(f"bad --fault {text!r}: {detail}", option=text) from None


@dataclass(slots=True)
class ActiveFault:
    """A scheduled fault bound to one asset, in nanoseconds of simulated time.

    Parameters
    ----------
    spec
        The fault as scheduled.
    kind
        The asset's kind (which metrics play which role).
    start_ns
        The simulated start of the run; the onset counts from it.
    """

    spec: FaultSpec
    kind: str
    start_ns: int
    onset_ns: int = field(init=False)
    end_ns: int | None = field(init=False)
    metric: str = field(init=False)
    _frozen: float | None = field(init=False, default=None)
    _burst_left: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.onset_ns = self.start_ns + round(self.spec.onset * _NS)
        duration = self.spec.duration
        self.end_ns = None if duration is None else self.onset_ns + round(duration * _NS)
        self.metric = self.spec.metric or MAIN_METRIC[self.kind]

    def active(self, t_ns: int) -> bool:
        """Whether the fault acts at ``t_ns``."""
        return t_ns >= self.onset_ns and (self.end_ns is None or t_ns < self.end_ns)

    def progress(self, t_ns: int) -> float:
        """How far the fault has developed at ``t_ns``, 0..1 (1 once ``develop`` has passed)."""
        develop = self.spec.develop
        if develop <= 0:
            return 1.0
        return min(1.0, (t_ns - self.onset_ns) / (develop * _NS))

    def silences(self, t_ns: int, rng: random.Random) -> bool:
        """Whether the asset publishes nothing at ``t_ns`` (sudden failure, a dropout burst)."""
        kind = self.spec.type
        if kind == "sudden_failure":
            return self.active(t_ns)
        if kind != "dropouts" or not self.active(t_ns):
            return False
        if self._burst_left == 0 and rng.random() < 0.05 * self.spec.severity * self.progress(t_ns):
            self._burst_left = rng.randint(3, 30)
        if self._burst_left:
            self._burst_left -= 1
            return True
        return False

    def apply(self, t_ns: int, metrics: dict[str, float], rng: random.Random) -> None:
        """Bend ``metrics`` (the reading at ``t_ns``) in place."""
        if not self.active(t_ns):
            return
        progress = self.progress(t_ns)
        f = self.spec.severity * progress
        roles = ROLES[self.kind]
        kind = self.spec.type
        if kind == "bearing_wear":
            _scale(metrics, roles.vibration, 1.0 + 4.0 * f)
            later = self.spec.severity * max(0.0, 2.0 * progress - 1.0)
            _add(metrics, roles.temperature, 20.0 * later)
            _scale(metrics, roles.current, 1.0 + 0.1 * later)
        elif kind == "overheating":
            _add(metrics, roles.temperature, 35.0 * f)
        elif kind == "motor_fault":
            spike = rng.random() < 0.05 + 0.3 * f
            _scale(metrics, roles.current, (1.0 + 0.15 * f) * (1.0 + 1.5 * f if spike else 1.0))
        elif kind == "pressure_leak":
            _scale(metrics, roles.pressure, 1.0 - 0.35 * f)
            _scale(metrics, roles.current, 1.0 + 0.25 * f)
            if self.kind == "injection-moulder":
                _scale(metrics, "cycle_time_s", 1.0 + 0.3 * f)
        elif kind == "stuck_sensor":
            if self._frozen is None:
                self._frozen = metrics[self.metric]
            metrics[self.metric] = self._frozen
        elif kind == "sensor_drift":
            low, high = RANGES[self.kind][self.metric]
            _add(metrics, self.metric, 0.3 * (high - low) * f)


def _scale(metrics: dict[str, float], name: str | None, factor: float) -> None:
    if name is not None and name in metrics:
        metrics[name] = round(metrics[name] * factor, 4)


def _add(metrics: dict[str, float], name: str | None, delta: float) -> None:
    if name is not None and name in metrics:
        metrics[name] = round(metrics[name] + delta, 4)


__all__ = ["ActiveFault", "parse_fault_option"]
