"""The operating-state model: the default detector, for machines whose normal moves with load.

A machine has several normals: idle, jobs at different loads, changeover, the warm-up after a
cold start. This detector judges each metric against what the asset's *other* metrics say it
should read, learned online from the readings it accepts:

* `models.memory.StateMemory` remembers the operating states seen (levels and noise), so a
  state seen before is no anomaly, and a metric that leaves the state the others are in is
  one (the nozzle hot while the printer is idle);
* `models.relations.Relations` learns what each metric follows, lags included (current and
  vibration follow the load, a temperature follows it with a lag), so a load never seen is
  no anomaly while the relation holds, and a broken relation is one inside the normal range;
  read from the state the asset is in, along the relation's slope, it explains a metric
  between and beyond the states seen (a temperature following the hour's duty);
* a change of operating state is recognised as such (`models.settling`): several metrics
  moving a lot within a few dozen readings, or one moving a lot as others step past their
  noise (a compressor's pressure moving 0.4 bar of 7 as its current halves), or going on in
  stages (unloaded, then loaded to a level never seen a few seconds later). Right after it
  the metrics that stepped may land as far from the states seen as the others did, counted
  in the units the states differ by (a moulder's pressure back from 0 to a job never seen);
  the new state is learned, and metrics that lag behind it (temperatures settling, averages
  catching up) are given time while they settle, moving the way they started and no faster.
  Outside those windows, a metric that drifts on its own is judged, however slowly it drifts;
* noise that grows (additive, or with the level for speeds and flows) and a sensor stuck at
  one value are evidence too, as in `models.controlchart`.

Each reading's evidence is worked out in `models.evidence`; the scales come from the
warm-up's statistics (`models.warmup`) and are refreshed from the noise seen in every state.
The statistic combines the two strongest metrics, sqrt(z1² + z2²); the threshold is the
asset's own, the larger of ``c`` and ``margin`` times the highest statistic of the last
quarter of the warm-up; the score is s² / (s² + thr²), 0.5 at the threshold
(`models.thresholded`). Readings learn only when they score under ``guard``, so a fault is
not learned as it grows; in the fast window after a change of state made by steps, under the
threshold, so the new state is learned.

Measured (README "Detectors"): on the simulated fleets with duty states of tens of minutes
and the default warm-up, false alarms fell from 1.7 to about 0.01 per machine-hour over a
simulated day, with every fault type caught on some site; SKAB F1 0.78 at FAR 13.3 % (the
control chart: 0.79 / 10.4 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.base import Features
from models.evidence import evidence
from models.memory import StateMemory, Vector
from models.relations import Relations
from models.settling import SLOTS, may_add_state
from models.thresholded import SelfThresholded, combine
from models.warmup import FLOOR, MAD_TO_SD, filled, longest_runs, mad, wander

# White noise: a second difference has sqrt(6) times its standard deviation.
_SQRT6 = math.sqrt(6.0)
# Mean |second difference| of white noise of unit standard deviation: 2 sqrt(3 / pi).
_ROUGH_PER_SD = 2.0 * math.sqrt(3.0 / math.pi)
# Accepted readings are learned one in _LEARN_EVERY, with that weight: consecutive readings
# of a smoothed level carry nearly the same information, and learning is a third of the cost.
_LEARN_EVERY = 4
# Right after a change of state made by steps, readings scoring under the threshold (0.5)
# are learned: the allowance keeps the new state under it, not under the guard, and a state
# never learned would be flagged once the fast window ends.
_FAST_GUARD = 0.5


class OperatingStates(SelfThresholded):
    """Operating-state model with its own per-asset threshold (see the module).

    Learns from the first `warmup` readings (buffered, then fitted once), then scores each
    reading in [0, 1) with 0.5 at the asset's threshold, and keeps learning from the readings
    it scores under ``guard``. `score_one` advances the model's filters, so it is called
    exactly once per reading, in time order, before `learn_one`.

    Parameters
    ----------
    warmup
        Readings fitted before any score.
    lam, lam_slow, lam_rough
        EWMA rates of the level, of the slower level the rate is read from, and of roughness.
    c, margin, guard
        Threshold floor, margin over the warm-up's highest statistic, and the score under
        which a reading is learned.
    step_k
        A move larger than this many noise scales is a step (a change of state when several
        metrics make one at once; a single metric's step waits ``grace`` readings).
    gamma, fast_window, settle, settle_ratio
        After a change of state: how far metrics may stand from the remembered states (per
        unit of distance of the others), for how long every metric may (readings), how long
        lagging metrics may settle, and how much faster than their average pace since the
        change they may move while settling.
    memory, radius, learn_rate
        `StateMemory` capacity, new-state radius and slowest learning rate.
    horizon, r2_min, signal_min, refresh
        `Relations` memory and when a relation counts; learning steps (of four readings)
        between refits.
    wander_horizon
        Readings over which a level's natural wander in the warm-up is measured.
    stuck_mult, stuck_min
        A run of identical values longer than max(stuck_mult x the longest warm-up run,
        stuck_min) crosses the threshold on its own.
    accuse
        Whether an established relation judges a metric on familiar ground (a relation that
        breaks is then evidence by itself); off, relations only explain. Off by default: on
        the simulated fleets, relations learned from a few states of a machine misjudged
        states they had not seen (false alarms x4), see README "Detectors".

    Examples
    --------
    A mill that runs jobs at two loads in its warm-up, then a third: no alarm, and the
    vibration leaving its relation with the current is one.

    >>> import random
    >>> rng = random.Random(5)
    >>> def mill(load, extra_vibration=0.0):
    ...     return {"current": 2 + 18 * load + rng.gauss(0, 0.25),
    ...             "vibration": 0.25 + 1.8 * load + extra_vibration + rng.gauss(0, 0.04)}
    >>> model = OperatingStates(warmup=400)
    >>> for i in range(400):
    ...     x = mill(0.6 if (i // 100) % 2 else 0.9)
    ...     _ = model.score_one(x)
    ...     model.learn_one(x)
    >>> scores = []
    >>> for _ in range(600):
    ...     x = mill(0.75)
    ...     scores.append(model.score_one(x))
    ...     model.learn_one(x)
    >>> max(scores[60:]) < 0.5
    True
    >>> worn = [model.score_one(mill(0.75, extra_vibration=0.5)) for _ in range(60)]
    >>> worn[-1] > 0.5, model.top_metric
    (True, 'vibration')
    """

    def __init__(
        self,
        warmup: int = 400,
        lam: float = 0.1,
        lam_slow: float = 0.02,
        lam_rough: float = 0.05,
        c: float = 6.5,
        margin: float = 1.25,
        guard: float = 0.1,
        step_k: float = 8.0,
        grace: int = 40,
        gamma: float = 3.0,
        fast_window: int = 60,
        settle: int = 2700,
        settle_ratio: float = 1.2,
        memory: int = 24,
        radius: float = 6.0,
        learn_rate: float = 1 / 600,
        horizon: float = 20_000,
        r2_min: float = 0.9,
        signal_min: float = 10.0,
        refresh: int = 25,
        wander_horizon: int = 100,
        stuck_mult: float = 2.0,
        stuck_min: float = 10.0,
        accuse: bool = False,
    ) -> None:
        # A short warm-up measures wander over a quarter of itself.
        wander_horizon = max(1, min(wander_horizon, warmup // 4))
        for name, value in (("lam", lam), ("lam_slow", lam_slow), ("lam_rough", lam_rough)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if c <= 0 or margin <= 0:
            raise ValueError(f"c and margin must be positive, got {c} and {margin}")
        super().__init__(warmup, c, margin, guard, stuck_mult, stuck_min)
        self.lam, self.lam_slow, self.lam_rough = lam, lam_slow, lam_rough
        self.step_k, self.grace = step_k, grace
        self.gamma, self.fast_window = gamma, fast_window
        self.settle, self.settle_ratio = settle, settle_ratio
        self.memory = StateMemory(memory, radius, learn_rate)
        self.horizon, self.r2_min, self.signal_min = horizon, r2_min, signal_min
        self.refresh = refresh
        self.wander_horizon = wander_horizon
        self.accuse = accuse
        self._rows: list[Features] | None = []
        self.relations: Relations | None = None

    @property
    def ready(self) -> bool:
        """True once the warm-up is fitted and scores count."""
        return self.relations is not None

    def __setstate__(self, state: dict[str, object]) -> None:
        """Load a pickled model, one saved before a per-metric constant existed included.

        A checkpoint of an earlier meshwatch keeps what it learned: the constants derived
        from it are worked out again (`_lists`), the cached expectations start neutral.
        """
        self.__dict__.update(state)
        if self.relations is not None and "_nudge" not in state:
            self._lists()
        if "since_onset" not in state:
            self.since_onset = getattr(self, "since_change", 1 << 30)
        if "_anchor" not in state:
            self._anchor: list[float] = [math.nan] * len(getattr(self, "names", ()))
        if "_widen" not in state:
            self._widen = [1.0] * len(getattr(self, "names", ()))

    # ---- the warm-up ----

    def _keep(self, x: Features) -> None:
        assert self._rows is not None
        self._rows.append(x)

    def _fit(self) -> None:
        assert self._rows is not None
        self.names = sorted({str(k) for row in self._rows for k in row})
        x = filled(self._rows, self.names)
        self._rows = None
        d = len(self.names)
        second = np.diff(x, n=2, axis=0) if len(x) > 2 else np.zeros((1, d))
        noise = MAD_TO_SD * mad(second) / _SQRT6
        noise = np.maximum(noise, 0.5 * second.std(axis=0) / _SQRT6)
        self.noise0 = self.noise = noise
        self.span = np.abs(x).max(axis=0)
        # A sensor has noise; a smooth metric varies without it (an average, a set-point
        # ramp): it locates the operating state but gives no evidence of its own.
        self.sensor = noise > 1e-3 * self.span
        self.smooth = ~self.sensor & (x.min(axis=0) != x.max(axis=0))
        self.can_stick = noise > 0
        self.scale = np.maximum(noise, FLOOR * self.span + 1e-9)
        self.sl_ratio = math.sqrt(self.lam / (2.0 - self.lam))
        self.wander = wander(x, self.lam, self.wander_horizon, self.step_k * self.scale)
        absolute = np.abs(second)
        self.rough_cap = 4.0 * np.maximum(absolute.mean(axis=0), 0.1 * self.scale)
        self.rough_mean = np.minimum(absolute, self.rough_cap).mean(axis=0)
        self.warm_level = x.mean(axis=0)
        self.run_limit = longest_runs(x)
        first = x[0].tolist()
        # Per-reading state as plain lists: a handful of metrics, so Python loops beat numpy.
        self.level, self.slow, self.rate = list(first), list(first), [0.0] * d
        self.rough = self.rough_mean.tolist()
        self.prev, self.prev2 = list(first), list(first)
        self.run = [1] * d
        self.step_age = [1 << 30] * d
        self.since_change = self.since_onset = 1 << 30
        self.before_change = list(first)
        self.history = [list(first) for _ in range(SLOTS)]
        self.tick = 0
        self.settling = [False] * d
        self.unsettled = [False] * d
        self.stepped = [False] * d
        self.in_grace = False
        self.relations = Relations(d, self.horizon, self.r2_min, self.signal_min)
        self._learned = 0
        self._stale = 0  # readings since the cached expectations were computed
        self._expected: list[float] | None = None
        self._anchor = [math.nan] * d  # the partner's level in each metric's expected state
        self._others = [0.0] * d
        self._widen = [1.0] * d
        self._nearest = -1
        self._state: tuple[list[float], list[float]] | None = None
        self._spread: list[float | None] = [None] * d
        self._plain = [0.0] * d
        self._leverage = [math.inf] * d
        self._lists()
        split = len(x) * 3 // 4
        highest = 0.0
        for i, row in enumerate(x.tolist()):
            e = evidence(self, row)
            if i >= split and i > 30:
                highest = max(highest, combine(e)[0])
            self._learn()
        self.threshold = max(self.c, self.margin * highest)

    def _lists(self) -> None:
        """Copy the per-metric constants the per-reading loop reads into plain lists."""
        self._scale = self.scale.tolist()
        self._sl_array = self.scale * self.sl_ratio
        self._sl = self._sl_array.tolist()
        self._span = self.span.tolist()
        self._sensor = self.sensor.tolist()
        self._smooth = self.smooth.tolist()
        self._can_stick = self.can_stick.tolist()
        self._wander = self.wander.tolist()
        self._rough_cap = self.rough_cap.tolist()
        self._rough_mean = self.rough_mean.tolist()
        self._warm_level = np.abs(self.warm_level).tolist()
        self._stuck_limit = np.maximum(self.stuck_mult * self.run_limit, self.stuck_min).tolist()
        self._movers = int((~self.smooth).sum())
        # A metric off its level by step_k of its noise units as another steps is part of a
        # change of state, however small that is beside its level (`models.settling`).
        self._nudge = (self.step_k * self._noise_floor()).tolist()
        self._stale = 1 << 30

    def _noise_floor(self) -> Vector:
        """Each metric's noise, with a floor for metrics that showed none."""
        floored: Vector = np.maximum(self.noise, 1e-3 * self.span + 1e-9)
        return floored

    # ---- learning ----

    def _learn(self) -> None:
        assert self.relations is not None
        self._learned += 1
        if self._learned % _LEARN_EVERY:  # one reading in four, four times the weight
            return
        level = np.array(self.level)
        self.relations.learn(np.array([1.0, *self.level, *self.rate]), _LEARN_EVERY)
        sl = self._sl_array
        before = len(self.memory)
        self.memory.learn(
            level,
            np.array(self.rough),
            sl,
            new_state=may_add_state(self, level, sl),
            count=_LEARN_EVERY,
            nearest=self._nearest,
        )
        if len(self.memory) != before:
            self._stale = 1 << 30
        if self._learned % (self.refresh * _LEARN_EVERY) == 0:
            self._refresh()

    def _refresh(self) -> None:
        """Scales from the noise seen in every state; the relations refitted."""
        assert self.relations is not None
        memory = self.memory
        noise = self.noise0
        self.span = np.maximum(self.span, np.array(self._span))
        if len(memory):
            noise = np.maximum(noise, memory.noise.max(axis=0) / _ROUGH_PER_SD)
            self.span = np.maximum(self.span, memory.span())
            self.sensor |= noise > 1e-3 * self.span
            self.can_stick |= self.sensor
        self.noise = noise
        self.scale = np.maximum(noise, FLOOR * self.span + 1e-9)
        # Whether a metric really moved is told by its noise, as for a change of state.
        self.relations.refresh(self._noise_floor() * self.sl_ratio)
        self._lists()

    # ---- the detector contract ----

    def _learn_scored(self, x: Features) -> None:
        """Learn a reading scored under the guard, unless a step of its own is in its grace.

        In the fast window after a change of state that metrics made by stepping, the guard
        is the threshold: the new state is learned from the readings that follow the change.
        """
        guard = self.guard
        t = self.since_change
        if t < self.fast_window and min(self.step_age) < t + self.fast_window:
            guard = _FAST_GUARD
        if self.last_score < guard and not self.in_grace:
            self._learn()

    def _statistic(self, x: Features) -> tuple[float, int]:
        nan = math.nan
        e = evidence(self, [x.get(name, nan) for name in self.names])
        # The explanation also counts metrics whose evidence waits (a step in its grace):
        # the top metric is `combine`'s over max(e, plain), found in the same pass. A smooth
        # metric (an average) locates the state but is never evidence, so it is not named.
        first = second = explained = 0.0
        top = 0
        sensor = self._sensor
        for j, (v, p) in enumerate(zip(e, self._plain, strict=True)):
            if v > first:
                first, second = v, first
            elif v > second:
                second = v
            waiting = v if v > p or not sensor[j] else p
            if waiting > explained:
                explained, top = waiting, j
        return math.hypot(first, second), top

    def learn_normal(self, rows: Sequence[Features]) -> None:
        """Learn readings that maintenance staff called normal (a false alarm's episode).

        The episode is cut into up to four stretches; each becomes a remembered operating
        state of its own, weighted by its readings, so the same pattern is known next time.
        """
        if self.relations is None or not rows:
            return
        x = filled(rows, self.names)
        sl = self.scale * self.sl_ratio
        for chunk in np.array_split(x, min(4, len(x))):
            second = np.abs(np.diff(chunk, n=2, axis=0)) if len(chunk) > 2 else None
            rough = (
                np.minimum(second, self.rough_cap).mean(axis=0)
                if second is not None
                else np.array(self.rough)
            )
            self.memory.learn(chunk.mean(axis=0), rough, sl, new_state=True, count=len(chunk))
        self._refresh()
