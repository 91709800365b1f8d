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
* a change of operating state is recognised as such: several metrics moving a lot within a
  few dozen readings. Right after it the new state is learned, and metrics that lag behind
  it (temperatures settling, averages catching up) are given time while they settle, moving
  the way they started and no faster. Outside those windows, a metric that drifts on its
  own is judged, however slowly it drifts;
* noise that grows (additive, or with the level for speeds and flows) and a sensor stuck at
  one value are evidence too, as in `models.controlchart`.

The statistic combines the two strongest metrics, sqrt(z1² + z2²); the threshold is the
asset's own, the larger of ``c`` and ``margin`` times the highest statistic of the last
quarter of the warm-up; the score is s² / (s² + thr²), 0.5 at the threshold. Readings learn
only when they score under ``guard``, so a fault is not learned as it grows.

Measured (README "Detectors"): on the simulated fleets with duty states of tens of minutes
and the default warm-up, false alarms fell from 1.7 to about 0.02 per machine-hour with
every fault type caught; SKAB F1 0.78 at FAR 13.5 % (the control chart: 0.79 / 10.4 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from river import base

from models.base import Features
from models.memory import StateMemory, Vector
from models.relations import Relations

# A metric's scale is at least this share of its largest magnitude (sensors without noise in
# the warm-up, quantised or off: rpm 0 while idle).
_FLOOR = 1e-2
# MAD to standard deviation for normal data.
_MAD_TO_SD = 1.4826
# White noise: a second difference has sqrt(6) times its standard deviation.
_SQRT6 = math.sqrt(6.0)
# Mean |second difference| of white noise of unit standard deviation: 2 sqrt(3 / pi).
_ROUGH_PER_SD = 2.0 * math.sqrt(3.0 / math.pi)
# Smoothed-level history: one sample every _EVERY readings, _SLOTS of them (80 readings).
_EVERY, _SLOTS = 5, 16
# A change of operating state is a move within _MOVE_SLOTS * _EVERY readings (30).
_MOVE_SLOTS = 6
# Standard deviation of log(roughness) of white noise under the roughness filter: a noise
# that doubles is about 3.5 of them.
_LOG_ROUGH_SD = 0.2
# Readings between two computations of the slowly changing expectations (the remembered
# state the others point to, the relations' uncertainty): the smoothed levels move little.
_CACHE_EVERY = 8
# Accepted readings are learned one in _LEARN_EVERY, with that weight: consecutive readings
# of a smoothed level carry nearly the same information, and learning is a third of the cost.
_LEARN_EVERY = 4
# A relation judges a metric only where it knows the ground: leverage under this (4 at the
# centre of the points it was fitted on; 16 is about 3.5 standard deviations out).
_FAMILIAR = 16.0
# A relation this many prediction deviations off is broken (for blaming its culprit).
_BROKEN = 3.0


class OperatingStates(base.AnomalyDetector):
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
        self.warmup = warmup
        self.lam, self.lam_slow, self.lam_rough = lam, lam_slow, lam_rough
        self.c, self.margin, self.guard = c, margin, guard
        self.step_k, self.grace = step_k, grace
        self.gamma, self.fast_window = gamma, fast_window
        self.settle, self.settle_ratio = settle, settle_ratio
        self.memory = StateMemory(memory, radius, learn_rate)
        self.horizon, self.r2_min, self.signal_min = horizon, r2_min, signal_min
        self.refresh = refresh
        self.wander_horizon = wander_horizon
        self.stuck_mult, self.stuck_min = stuck_mult, stuck_min
        self.accuse = accuse
        self.names: list[str] = []
        self._rows: list[Features] | None = []
        self.seen = 0
        self.threshold = c
        self.last_score = 0.0
        self.top_metric = ""
        self.relations: Relations | None = None

    @property
    def ready(self) -> bool:
        """True once the warm-up is fitted and scores count."""
        return self.relations is not None

    # ---- the warm-up ----

    def _fit(self) -> None:
        assert self._rows is not None
        self.names = sorted({str(k) for row in self._rows for k in row})
        x = _filled(self._rows, self.names)
        self._rows = None
        d = len(self.names)
        second = np.diff(x, n=2, axis=0) if len(x) > 2 else np.zeros((1, d))
        noise = _MAD_TO_SD * _mad(second) / _SQRT6
        noise = np.maximum(noise, 0.5 * second.std(axis=0) / _SQRT6)
        self.noise0 = noise
        self.span = np.abs(x).max(axis=0)
        # A sensor has noise; a smooth metric varies without it (an average, a set-point
        # ramp): it locates the operating state but gives no evidence of its own.
        self.sensor = noise > 1e-3 * self.span
        self.smooth = ~self.sensor & (x.min(axis=0) != x.max(axis=0))
        self.can_stick = noise > 0
        self.scale = np.maximum(noise, _FLOOR * self.span + 1e-9)
        self.sl_ratio = math.sqrt(self.lam / (2.0 - self.lam))
        self.wander = _wander(x, self.lam, self.wander_horizon, self.step_k * self.scale)
        absolute = np.abs(second)
        self.rough_cap = 4.0 * np.maximum(absolute.mean(axis=0), 0.1 * self.scale)
        self.rough_mean = np.minimum(absolute, self.rough_cap).mean(axis=0)
        self.warm_level = x.mean(axis=0)
        self.run_limit = _longest_runs(x)
        first = x[0].tolist()
        # Per-reading state as plain lists: a handful of metrics, so Python loops beat numpy.
        self.level, self.slow, self.rate = list(first), list(first), [0.0] * d
        self.rough = self.rough_mean.tolist()
        self.prev, self.prev2 = list(first), list(first)
        self.run = [1] * d
        self.step_age = [1 << 30] * d
        self.since_change = 1 << 30
        self.before_change = list(first)
        self.history = [list(first) for _ in range(_SLOTS)]
        self.tick = 0
        self.settling = [False] * d
        self.unsettled = [False] * d
        self.stepped = [False] * d
        self.in_grace = False
        self.relations = Relations(d, self.horizon, self.r2_min, self.signal_min)
        self._learned = 0
        self._stale = 0  # readings since the cached expectations were computed
        self._expected: list[float] | None = None
        self._others = [0.0] * d
        self._nearest = -1
        self._state: tuple[list[float], list[float]] | None = None
        self._spread: list[float | None] = [None] * d
        self._plain = [0.0] * d
        self._leverage = [math.inf] * d
        self._lists()
        split = len(x) * 3 // 4
        highest = 0.0
        for i, row in enumerate(x.tolist()):
            evidence = self._evidence(row)
            if i >= split and i > 30:
                highest = max(highest, _combine(evidence)[0])
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
        self._stale = 1 << 30

    # ---- per reading ----

    def _evidence(self, x: list[float]) -> list[float]:
        """Advance the filters with one reading; return each metric's evidence."""
        d = len(x)
        lam, lam_slow, lam_rough = self.lam, self.lam_slow, self.lam_rough
        slope = lam_slow / (1.0 - lam_slow)  # (level - slow level) over the slope
        step_k, scale, span = self.step_k, self._scale, self._span
        level, slow, rate, rough = self.level, self.slow, self.rate, self.rough
        prev, prev2, run, step_age = self.prev, self.prev2, self.run, self.step_age
        back = self.history[(self.tick // _EVERY - _MOVE_SLOTS) % _SLOTS]
        smooth, cap = self._smooth, self._rough_cap
        moved = 0
        for j in range(d):
            v = x[j]
            if v != v:  # a metric missing from this reading holds its last value
                v = x[j] = prev[j]
            if abs(v) > span[j]:  # a magnitude never seen: its scale floor grows
                span[j] = abs(v)
                if _FLOOR * span[j] > scale[j]:
                    scale[j] = _FLOOR * span[j]
                    self._sl[j] = self._sl_array[j] = scale[j] * self.sl_ratio
            jump = step_k * scale[j]
            step_age[j] = 0 if abs(v - level[j]) > jump else step_age[j] + 1
            if not smooth[j] and abs(v - back[j]) > jump:
                moved += 1
            level[j] += lam * (v - level[j])
            slow[j] += lam_slow * (level[j] - slow[j])
            rate[j] = (level[j] - slow[j]) * slope
            second = abs(v - 2.0 * prev[j] + prev2[j])
            rough[j] += lam_rough * ((second if second < cap[j] else cap[j]) - rough[j])
            run[j] = run[j] + 1 if v == prev[j] else 1
        self.prev2, self.prev = prev, x
        self._track_changes(moved, back)
        self._stale += 1
        if self._stale >= _CACHE_EVERY or self.since_change == 0:
            self._cache()
        z = self._level_evidence()
        self._plain = list(z)  # before grace and settling: what top_metric falls back on
        self.in_grace = False
        for j in range(d):
            if step_age[j] < self.grace:  # a step of its own: judged once its neighbours had time
                z[j] = 0.0
                self.in_grace = True
        self._settle()
        rough_z = self._rough_evidence()
        threshold, stuck_limit, can_stick = self.threshold, self._stuck_limit, self._can_stick
        out = [0.0] * d
        for j in range(d):
            if not self._sensor[j]:
                continue
            e = 0.0 if self.settling[j] else z[j]
            if rough_z[j] > e:
                e = rough_z[j]
            if can_stick[j] and x[j] != 0.0:
                # a run at its limit crosses the threshold, not just reaches it
                stuck = 1.001 * threshold * run[j] / stuck_limit[j]
                if stuck > e:
                    e = stuck
            out[j] = e
        return out

    def _track_changes(self, moved: int, back: list[float]) -> None:
        """Notice a change of operating state: several metrics moved a lot within ~30 readings."""
        self.since_change += 1
        if moved >= 2 and 3 * moved >= self._movers:
            if self.since_change > 30:
                self.before_change = list(back)
            self.since_change = 0
            self.unsettled = [True] * len(back)
        self.tick += 1
        if self.tick % _EVERY == 0:
            self.history[(self.tick // _EVERY) % _SLOTS] = list(self.level)

    def _cache(self) -> None:
        """Refresh what changes slowly: expected states and the relations' uncertainty.

        The remembered state each metric is expected in moves with the smoothed levels, and
        each relation's uncertainty with the operating point: both change little per reading.
        """
        self._stale = 0
        level = np.array(self.level)
        memory = self.memory
        if len(memory):
            sl = self._sl_array
            expected, others = memory.expected(level, sl)
            self._expected, self._others = expected.tolist(), others.tolist()
            k = self._nearest = memory.nearest(level, sl)
            # the state's noise and level, the reference of the roughness evidence
            self._state = (
                (memory.noise[k].tolist(), np.abs(memory.levels[k]).tolist())
                if memory.counts[k] >= 20
                else None
            )
        assert self.relations is not None
        self._spread, self._leverage = self.relations.spreads(self.level, self.rate)

    def _level_evidence(self) -> list[float]:
        """Each metric against the state the others are in, unless a relation explains it."""
        assert self.relations is not None
        d = len(self.level)
        level, sl, wander = self.level, self._sl, self._wander
        z = [math.inf] * d
        expected = self._expected
        if expected is not None:
            # Right after a change of state every metric may stand apart from the states
            # seen, in proportion to how far the others moved; later only those settling.
            t = self.since_change
            for j in range(d):
                if t < self.fast_window or (t < self.settle and self.settling[j]):
                    allowance = math.sqrt(1.0 + (self.gamma * self._others[j]) ** 2)
                else:
                    allowance = 1.0
                unit = sl[j] if sl[j] > wander[j] else wander[j]
                z[j] = abs(level[j] - expected[j]) / (unit * allowance)
        relations = self.relations
        related = relations.zscores(level, self.rate, self._spread)
        settled = self.since_change >= self.fast_window
        judged: list[int] = []
        for j in range(d):
            r = related[j]
            if self.accuse and settled and r < math.inf and self._leverage[j] < _FAMILIAR:
                # On ground its relation knows, a metric is judged by the relation: one that
                # leaves what it follows is an anomaly even inside its normal range.
                judged.append(j)
                z[j] = r
            elif r < z[j]:  # elsewhere a relation can only explain a metric, not accuse it
                z[j] = r
            if z[j] == math.inf:
                z[j] = 0.0
        self._blame(z, judged, related)
        return z

    def _blame(self, z: list[float], judged: list[int], related: list[float]) -> None:
        """Put a broken relation's evidence on the metric that broke it.

        When one metric leaves the others, the relations that follow it break too: the
        culprit is the partner of broken relations (or, in a pair that follows each other,
        the one further from its remembered state), and its followers are cleared.
        """
        broken = [j for j in judged if related[j] > _BROKEN]
        if len(broken) < 2:
            return
        relations, expected = self.relations, self._expected
        assert relations is not None
        for j in broken:
            k = relations.partner(j)
            if k < 0 or k == j:
                continue
            if k in broken and relations.partner(k) == j and expected is not None:
                # a pair that follows each other: the one further from its state is the culprit
                dj = abs(self.level[j] - expected[j]) / self._sl[j]
                dk = abs(self.level[k] - expected[k]) / self._sl[k]
                if dj >= dk:
                    continue
            z[k] = max(z[k], related[j])
            z[j] = 0.0

    def _settle(self) -> None:
        """Note which metrics are settling after a change of state.

        Settling: moving ever since, the way they started and no faster. A metric that
        jumped with the change and then came to rest has settled until the next change: if
        it moves again on its own, that is judged. One lagging behind the change (a
        temperature) settles for as long as it keeps approaching the new state ever slower.
        """
        t = self.since_change
        d = len(self.level)
        if not 20 < t < self.settle:
            self.settling = [False] * d
            return
        back = min(15, t // 10)  # half the time since the change, at most 75 readings
        old = self.history[(self.tick // _EVERY - back) % _SLOTS]
        span = _EVERY * back + self.tick % _EVERY
        level, before, sl, unsettled = self.level, self.before_change, self._sl, self.unsettled
        if t == self.fast_window:
            # the metrics that jumped with the change (not those lagging behind it): once
            # they come to rest, they have settled
            self.stepped = [abs(level[j] - before[j]) > 3.0 * sl[j] for j in range(d)]
        settling = [False] * d
        for j in range(d):
            change = level[j] - old[j]
            if t > self.fast_window and self.stepped[j] and abs(change) <= 2.0 * sl[j]:
                unsettled[j] = False  # came to rest
            if not unsettled[j]:
                continue
            moved = level[j] - before[j]
            settling[j] = (
                abs(moved) > 3.0 * sl[j]
                and (change > 0) == (moved > 0)
                and abs(change) / span <= self.settle_ratio * abs(moved) / t
            )
        self.settling = settling

    def _rough_evidence(self) -> list[float]:
        """Noise grown past the state's, additive or in proportion to the level."""
        state = self._state
        out = []
        for j, rough in enumerate(self.rough):
            reference, at = self._rough_mean[j], self._warm_level[j]
            if state is not None:
                reference = max(reference, state[0][j])
                at = state[1][j]
            reference = max(reference, 0.05 * self._scale[j])
            if rough <= reference:
                out.append(0.0)
                continue
            grown = math.log(rough / reference)
            # noise that scales with the level (speeds, flows, pressures) is normal too
            ratio = abs(self.level[j]) / at if at > 0 else math.inf
            if ratio > 1.0:
                grown -= math.log(ratio) if ratio < math.inf else grown
            out.append(max(grown, 0.0) / _LOG_ROUGH_SD)
        return out

    # ---- learning ----

    def _learn(self) -> None:
        assert self.relations is not None
        self._learned += 1
        if self._learned % _LEARN_EVERY:  # one reading in four, four times the weight
            return
        level = np.array(self.level)
        self.relations.learn(np.concatenate(([1.0], level, self.rate)), _LEARN_EVERY)
        sl = self._sl_array
        before = len(self.memory)
        self.memory.learn(
            level,
            np.array(self.rough),
            sl,
            new_state=self._may_add_state(level, sl),
            count=_LEARN_EVERY,
            nearest=self._nearest,
        )
        if len(self.memory) != before:
            self._stale = 1 << 30
        if self._learned % (self.refresh * _LEARN_EVERY) == 0:
            self._refresh()

    def _may_add_state(self, level: Vector, sl: Vector) -> bool:
        """Whether this reading may start a new remembered state.

        Only while the asset changes state: right after a change, then for the metrics still
        settling. A drift at other times is judged, not learned.
        """
        if self.since_change < self.fast_window:
            return True
        settling = np.array(self.settling)
        if self.since_change >= self.settle or not settling.any():
            return False
        k = self.memory.nearest(level, sl)
        if k < 0:
            return True
        squares = ((self.memory.levels[k] - level) / sl) ** 2
        return bool(squares[~settling].sum() <= 0.2 * squares.sum())

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
        self.scale = np.maximum(noise, _FLOOR * self.span + 1e-9)
        self.relations.refresh(self.scale * self.sl_ratio)
        self._lists()

    # ---- river's contract ----

    def learn_one(self, x: Features) -> None:
        """Keep a warm-up reading (fitting at the end), or learn a reading scored as normal."""
        self.seen += 1
        if self._rows is not None:
            self._rows.append(x)
            if self.seen >= self.warmup:
                self._fit()
            return
        if self.last_score < self.guard and not self.in_grace:
            self._learn()

    def score_one(self, x: Features) -> float:
        """The calibrated score in [0, 1): 0.5 is the threshold; 0 during warm-up."""
        if self.relations is None:
            return 0.0
        nan = math.nan
        evidence = self._evidence([x.get(name, nan) for name in self.names])
        s = _combine(evidence)[0]
        # The explanation also counts metrics whose evidence waits (a step in its grace).
        explained = [e if e > p else p for e, p in zip(evidence, self._plain, strict=True)]
        self.top_metric = self.names[_combine(explained)[1]]
        ratio = self.threshold / s if s > 0 else math.inf
        self.last_score = 1.0 / (1.0 + ratio * ratio) if ratio < 1e150 else 0.0
        return self.last_score

    def learn_normal(self, rows: Sequence[Features]) -> None:
        """Learn readings that maintenance staff called normal (a false alarm's episode).

        The episode is cut into up to four stretches; each becomes a remembered operating
        state of its own, weighted by its readings, so the same pattern is known next time.
        """
        if self.relations is None or not rows:
            return
        x = _filled(rows, self.names)
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


def _filled(rows: Sequence[Features], names: list[str]) -> Vector:
    """Rows as a matrix in `names` order; a gap holds the last value (the first: the next)."""
    x = np.array([[row.get(n, math.nan) for n in names] for row in rows], dtype=float)
    for j in range(x.shape[1]):
        column = x[:, j]
        seen = ~np.isnan(column)
        if not seen.any():
            column[:] = 0.0
            continue
        index = np.where(seen, np.arange(len(column)), 0)
        np.maximum.accumulate(index, out=index)
        first = int(np.argmax(seen))
        column[:] = column[index]
        column[:first] = column[first]
    return x


def _mad(values: Vector) -> Vector:
    """Median absolute deviation from the median, per column."""
    return np.median(np.abs(values - np.median(values, axis=0)), axis=0)


def _wander(x: Vector, lam: float, horizon: int, step: Vector) -> Vector:
    """How far a smoothed level wanders over `horizon` readings, within a state.

    Windows in which two or more metrics moved more than `step` (a change of state in the
    warm-up), and those within 30 readings of one, are left out; the rest give a robust
    spread (MAD) of the moves.
    """
    level = np.empty_like(x)
    current = x[0].copy()
    for i, row in enumerate(x):
        current += lam * (row - current)
        level[i] = current
    if len(x) <= 30 + 2 * horizon:
        return np.zeros(x.shape[1])
    jumps = level[30 + horizon :] - level[30:-horizon]
    changed = (np.abs(jumps) > step).sum(axis=1) >= 2
    # also leave out the windows near one: the smoothed level is still on its way there
    near = np.convolve(changed.astype(float), np.ones(61), mode="full")[30 : 30 + len(changed)] > 0
    quiet = ~near
    if not quiet.any():
        return np.zeros(x.shape[1])
    return _MAD_TO_SD * _mad(jumps[quiet])


def _longest_runs(x: Vector) -> Vector:
    """Per column, the longest run of identical consecutive values."""
    run = np.ones(x.shape[1])
    longest = run.copy()
    for i in range(1, len(x)):
        run = np.where(x[i] == x[i - 1], run + 1, 1)
        longest = np.maximum(longest, run)
    return longest


def _combine(evidence: list[float]) -> tuple[float, int]:
    """The statistic, sqrt(z1² + z2²) of the two strongest metrics, and the strongest."""
    first = second = 0.0
    top = 0
    for j, e in enumerate(evidence):
        if e > first:
            first, second, top = e, first, j
        elif e > second:
            second = e
    return math.hypot(first, second), top
