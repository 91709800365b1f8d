"""Changes of operating state, and the metrics settling after one (operating-state model).

A change of operating state is several metrics moving a lot within a few dozen readings.
Right after it every metric may stand apart from the states remembered; later only the
metrics still settling may: moving ever since, the way they started and no faster (a
temperature lagging behind the load). New remembered states are learned only then.
These functions advance and read a `models.operating.OperatingStates`' state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.memory import Vector

if TYPE_CHECKING:
    from models.operating import OperatingStates

# Smoothed-level history: one sample every EVERY readings, SLOTS of them (80 readings).
EVERY, SLOTS = 5, 16
# A change of operating state is a move within MOVE_SLOTS * EVERY readings (30).
MOVE_SLOTS = 6
# A metric that jumped with a change has made most of its move by the end of the fast window:
# it moved less than this share of it in the last MOVE_SLOTS * EVERY readings. A lagging one
# (a temperature) is still moving at nearly its pace since the change.
_JUMPED = 0.25
# A change of state may come in stages for this many readings after it began: a lone step
# later than that is judged as one metric's own.
_STAGED = 180


def track_changes(
    model: OperatingStates, moved: int, nudged: int, stirred: int, back: list[float]
) -> None:
    """Notice a change of operating state: several metrics moved a lot within ~30 readings.

    ``moved`` metrics moved past their step size; ``nudged`` ones step past their noise at
    this reading, though by less than their step size (a pressure moving 0.4 bar of 7 as
    the load drops): with one that moved, they make a change of state too. ``stirred`` ones
    moved past half that: in the fast window after a change, one metric moving past its
    step size as another stirs is the change going on in stages (a compressor unloaded,
    then loaded to a level never seen, its pressure moving a few noise units).
    """
    model.since_change += 1
    model.since_onset += 1
    movers = moved + nudged
    if moved >= 1 and movers >= 2 and 3 * movers >= model._movers:
        if model.since_change > 30:
            model.before_change = list(back)
        model.since_change = model.since_onset = 0
        model.unsettled = [True] * len(back)
    elif (
        moved
        and movers + stirred >= 2
        and model.since_change < model.fast_window
        and model.since_onset < _STAGED
    ):
        model.since_change = 0  # lagging metrics settle as they have since the change began
    model.tick += 1
    if model.tick % EVERY == 0:
        model.history[(model.tick // EVERY) % SLOTS] = list(model.level)


def settle(model: OperatingStates) -> None:
    """Note which metrics are settling after a change of state.

    Settling: moving ever since, the way they started and no faster. A metric that
    jumped with the change and then came to rest has settled until the next change: if
    it moves again on its own, that is judged. One lagging behind the change (a
    temperature) settles for as long as it keeps approaching the new state ever slower.
    """
    t = model.since_change
    d = len(model.level)
    if not 20 < t < model.settle:
        model.settling = [False] * d
        return
    back = min(15, t // 10)  # half the time since the change, at most 75 readings
    old = model.history[(model.tick // EVERY - back) % SLOTS]
    span = EVERY * back + model.tick % EVERY
    level, before, sl, unsettled = model.level, model.before_change, model._sl, model.unsettled
    if t == model.fast_window:
        # the metrics that jumped with the change and are already near rest (not those
        # lagging behind it, still moving at nearly their pace since the change): once they
        # come to rest, they have settled
        recent = model.history[(model.tick // EVERY - MOVE_SLOTS) % SLOTS]
        model.stepped = [
            abs(level[j] - before[j]) > 3.0 * sl[j]
            and abs(level[j] - recent[j]) < _JUMPED * abs(level[j] - before[j])
            for j in range(d)
        ]
    fast_window, stepped, ratio = model.fast_window, model.stepped, model.settle_ratio
    # the average pace counts from the change's start, its stages included: a later stage
    # does not make a climb that begins with it (an overheating spindle) look like settling
    onset = model.since_onset if model.since_onset > t else t
    settling = [False] * d
    for j in range(d):
        change = level[j] - old[j]
        if t > fast_window and stepped[j] and abs(change) <= 2.0 * sl[j]:
            unsettled[j] = False  # came to rest
        if not unsettled[j]:
            continue
        moved = level[j] - before[j]
        settling[j] = (
            abs(moved) > 3.0 * sl[j]
            and (change > 0) == (moved > 0)
            and abs(change) / span <= ratio * abs(moved) / onset
        )
    model.settling = settling


def may_add_state(model: OperatingStates, level: Vector, sl: Vector) -> bool:
    """Whether this reading may start a new remembered state.

    Only while the asset changes state: right after a change, then for the metrics still
    settling. A drift at other times is judged, not learned.
    """
    if model.since_change < model.fast_window:
        return True
    if model.since_change >= model.settle or not any(model.settling):
        return False
    settling = np.array(model.settling)
    k = model.memory.nearest(level, sl)
    if k < 0:
        return True
    squares = ((model.memory.levels[k] - level) / sl) ** 2
    return bool(squares[~settling].sum() <= 0.2 * squares.sum())
