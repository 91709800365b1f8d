"""What one reading says to the operating-state model: each metric's evidence.

A metric is judged against the remembered state the *other* metrics point to, unless a
relation it follows explains it; a step of its own waits its grace, a metric settling after
a change of state is given time; noise grown past the state's, and a sensor stuck at one
value, are evidence too. These functions advance and read a
`models.operating.OperatingStates`' state, once per reading.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from models.settling import EVERY, MOVE_SLOTS, SLOTS, settle, track_changes
from models.warmup import FLOOR

if TYPE_CHECKING:
    from models.operating import OperatingStates

# Standard deviation of log(roughness) of white noise under the roughness filter: a noise
# that doubles is about 3.5 of them.
_LOG_ROUGH_SD = 0.2
# Readings between two computations of the slowly changing expectations (the remembered
# state the others point to, the relations' uncertainty): the smoothed levels move little.
_CACHE_EVERY = 8
# A relation judges a metric only where it knows the ground: leverage under this (4 at the
# centre of the points it was fitted on; 16 is about 3.5 standard deviations out).
_FAMILIAR = 16.0
# A relation this many prediction deviations off is broken (for blaming its culprit).
_BROKEN = 3.0


def evidence(model: OperatingStates, x: list[float]) -> list[float]:
    """Advance the filters with one reading; return each metric's evidence.

    This runs once per reading: the per-metric loops read the model's lists through locals.
    """
    d = len(x)
    lam, lam_slow, lam_rough = model.lam, model.lam_slow, model.lam_rough
    slope = lam_slow / (1.0 - lam_slow)  # (level - slow level) over the slope
    step_k, scale, span = model.step_k, model._scale, model._span
    level, slow, rate, rough = model.level, model.slow, model.rate, model.rough
    prev, prev2, run, step_age = model.prev, model.prev2, model.run, model.step_age
    back = model.history[(model.tick // EVERY - MOVE_SLOTS) % SLOTS]
    smooth, cap = model._smooth, model._rough_cap
    nudge = model._nudge
    moved = nudged = stirred = 0
    for j in range(d):
        v = x[j]
        last = prev[j]
        if v != v:  # a metric missing from this reading holds its last value
            v = x[j] = last
        if abs(v) > span[j]:  # a magnitude never seen: its scale floor grows
            span[j] = abs(v)
            if FLOOR * span[j] > scale[j]:
                scale[j] = FLOOR * span[j]
                model._sl[j] = model._sl_array[j] = scale[j] * model.sl_ratio
        jump = step_k * scale[j]
        smoothed = level[j]
        # a step holds for two readings at least; a lone spike is not one
        stepped = abs(v - smoothed) > jump and abs(last - smoothed) > jump
        step_age[j] = 0 if stepped else step_age[j] + 1
        if not smooth[j]:
            if abs(v - back[j]) > jump:
                moved += 1
            elif abs(v - smoothed) > nudge[j]:
                nudged += 1  # past its noise, though by little beside its level
            elif abs(v - smoothed) > 0.5 * nudge[j]:
                stirred += 1  # less, but more than noise does
        smoothed += lam * (v - smoothed)
        level[j] = smoothed
        slower = slow[j]
        slower += lam_slow * (smoothed - slower)
        slow[j] = slower
        rate[j] = (smoothed - slower) * slope
        second = abs(v - 2.0 * last + prev2[j])
        roughness = rough[j]
        rough[j] = roughness + lam_rough * ((second if second < cap[j] else cap[j]) - roughness)
        run[j] = run[j] + 1 if v == last else 1
    model.prev2, model.prev = prev, x
    track_changes(model, moved, nudged, stirred, back)
    model._stale += 1
    if model._stale >= _CACHE_EVERY or model.since_change == 0:
        _cache(model)
    z = _level_evidence(model)
    model._plain = z  # before grace and settling: what top_metric falls back on
    settle(model)
    rough_z = _rough_evidence(model)
    threshold, stuck_limit, can_stick = model.threshold, model._stuck_limit, model._can_stick
    sensor, settling, grace = model._sensor, model.settling, model.grace
    in_grace = False
    out = [0.0] * d
    for j in range(d):
        waiting = step_age[j] < grace  # a step of its own: judged once its neighbours had time
        if waiting:
            in_grace = True
        if not sensor[j]:
            continue
        e = 0.0 if waiting or settling[j] else z[j]
        if rough_z[j] > e:
            e = rough_z[j]
        if can_stick[j] and x[j] != 0.0:
            # a run at its limit crosses the threshold, not just reaches it
            stuck = 1.001 * threshold * run[j] / stuck_limit[j]
            if stuck > e:
                e = stuck
        out[j] = e
    model.in_grace = in_grace
    return out


def _cache(model: OperatingStates) -> None:
    """Refresh what changes slowly: expected states and the relations' uncertainty.

    The remembered state each metric is expected in moves with the smoothed levels, and
    each relation's uncertainty with the operating point: both change little per reading.
    """
    model._stale = 0
    level = np.array(model.level)
    memory = model.memory
    if len(memory):
        sl = model._sl_array
        expected, others, chosen = memory.expected(level, sl)
        # where each metric's relation partner stood in that state: the relation's slope
        # carries the expectation from there to where the partner stands now
        assert model.relations is not None
        model._anchor = [
            float(memory.levels[chosen[j], best[0]]) if best is not None else math.nan
            for j, best in enumerate(model.relations.best)
        ]
        # The others' distance is in support units; a metric whose states lie far apart
        # beside its noise (a pressure of 0 or 1,000 bar) may stand as far apart in its own.
        unit = np.maximum(sl, model.wander)
        model._widen = np.maximum(1.0, memory.support(sl) / unit).tolist()
        model._expected, model._others = expected.tolist(), others.tolist()
        k = model._nearest = memory.nearest(level, sl)
        # the state's noise and level, the reference of the roughness evidence
        model._state = (
            (memory.noise[k].tolist(), np.abs(memory.levels[k]).tolist())
            if memory.counts[k] >= 20
            else None
        )
    assert model.relations is not None
    model._spread, model._leverage = model.relations.spreads(model.level, model.rate)


def _level_evidence(model: OperatingStates) -> list[float]:
    """Each metric against the state the others are in, unless a relation explains it."""
    relations = model.relations
    assert relations is not None
    level, sl, wander = model.level, model._sl, model._wander
    d = len(level)
    z = [math.inf] * d
    expected = model._expected
    t = model.since_change
    if expected is not None:
        # Right after a change of state every metric may stand apart from the states
        # seen, in proportion to how far the others moved; later only those settling.
        fast_window = model.fast_window
        fast, settling_time = t < fast_window, t < model.settle
        settling, others, gamma = model.settling, model._others, model.gamma
        widen, step_age = model._widen, model.step_age
        for j in range(d):
            if fast or (settling_time and settling[j]):
                # a metric that stepped with the change may land as far off in its own units
                wide = widen[j] if step_age[j] < t + fast_window else 1.0
                allowance = math.sqrt(1.0 + (gamma * others[j] * wide) ** 2)
            else:
                allowance = 1.0
            unit = sl[j] if sl[j] > wander[j] else wander[j]
            z[j] = abs(level[j] - expected[j]) / (unit * allowance)
    if expected is not None:
        _anchored(model, z)
    related = relations.zscores(level, model.rate, model._spread)
    accuse = model.accuse and t >= model.fast_window  # relations judge once settled
    leverage = model._leverage
    judged: list[int] = []
    for j in range(d):
        r = related[j]
        if accuse and r < math.inf and leverage[j] < _FAMILIAR:
            # On ground its relation knows, a metric is judged by the relation: one that
            # leaves what it follows is an anomaly even inside its normal range.
            judged.append(j)
            z[j] = r
        elif r < z[j]:  # elsewhere a relation can only explain a metric, not accuse it
            z[j] = r
        if z[j] == math.inf:
            z[j] = 0.0
    _blame(model, z, judged, related)
    return z


def _anchored(model: OperatingStates, z: list[float]) -> None:
    """Explain a metric by the state it is expected in, moved along its relation.

    Between and beyond the remembered states a metric that follows another moves with it:
    a temperature higher as the duty averaged over the last hour is. The expectation is the
    state's level plus the relation's slope times how far the partner stands from its level
    in that state (a local, anchored reading of the relation, not its global intercept).
    """
    relations, expected, anchor = model.relations, model._expected, model._anchor
    assert relations is not None and expected is not None
    level, sl, wander = model.level, model._sl, model._wander
    for j, best in enumerate(relations.best):
        if best is None or z[j] == 0.0:
            continue
        p, coefficients = best[0], best[1]
        moved = expected[j] + coefficients[1] * (level[p] - anchor[j])
        unit = sl[j] if sl[j] > wander[j] else wander[j]
        za = abs(level[j] - moved) / unit
        if za < z[j]:
            z[j] = za


def _blame(model: OperatingStates, z: list[float], judged: list[int], related: list[float]) -> None:
    """Put a broken relation's evidence on the metric that broke it.

    When one metric leaves the others, the relations that follow it break too: the
    culprit is the partner of broken relations (or, in a pair that follows each other,
    the one further from its remembered state), and its followers are cleared.
    """
    if len(judged) < 2:  # as when relations only explain (the default): none to blame
        return
    broken = [j for j in judged if related[j] > _BROKEN]
    if len(broken) < 2:
        return
    relations, expected = model.relations, model._expected
    assert relations is not None
    for j in broken:
        k = relations.partner(j)
        if k < 0 or k == j:
            continue
        if k in broken and relations.partner(k) == j and expected is not None:
            # a pair that follows each other: the one further from its state is the culprit
            dj = abs(model.level[j] - expected[j]) / model._sl[j]
            dk = abs(model.level[k] - expected[k]) / model._sl[k]
            if dj >= dk:
                continue
        z[k] = max(z[k], related[j])
        z[j] = 0.0


def _rough_evidence(model: OperatingStates) -> list[float]:
    """Noise grown past the state's, additive or in proportion to the level."""
    state = model._state
    rough_mean, warm_level, scale, level = (
        model._rough_mean,
        model._warm_level,
        model._scale,
        model.level,
    )
    out = []
    for j, rough in enumerate(model.rough):
        reference, at = rough_mean[j], warm_level[j]
        if state is not None:
            if state[0][j] > reference:
                reference = state[0][j]
            at = state[1][j]
        if 0.05 * scale[j] > reference:
            reference = 0.05 * scale[j]
        if rough <= reference:
            out.append(0.0)
            continue
        grown = math.log(rough / reference)
        # noise that scales with the level (speeds, flows, pressures) is normal too
        ratio = abs(level[j]) / at if at > 0 else math.inf
        if ratio > 1.0:
            grown -= math.log(ratio) if ratio < math.inf else grown
        out.append((0.0 if grown < 0.0 else grown) / _LOG_ROUGH_SD)
    return out
