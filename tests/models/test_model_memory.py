"""The state memory keeps the states a machine works in, merging those least told apart."""

from __future__ import annotations

import numpy as np

from models.memory import StateMemory

SL = np.array([0.15, 0.1])  # smoothed noise of the current (A) and the temperature (°C)


def test_a_full_memory_merges_the_states_closest_on_the_scale_they_differ_on() -> None:
    """A new state merges two of a warming temperature's states, not two loads.

    Idle, the oil warming through 34 A (64 to 76 °C), and a second load of 30 A: in noise
    units the loads (27 apart) are closer than temperatures 4 °C apart (40); on the scale the
    states differ on (a twentieth of each range: 1.3 A, 2.8 °C) the loads are 3.1 apart and
    the temperatures 1.4.
    """
    memory = StateMemory(capacity=6)
    for state in ((8, 20), (34, 64), (34, 68), (34, 72), (34, 76), (30, 76), (8, 40)):
        memory.learn(np.array(state, dtype=float), np.zeros(2), SL, new_state=True)
    currents = memory.levels[:, 0].tolist()
    assert len(memory) == 6
    assert 30.0 in currents and currents.count(34.0) == 3
