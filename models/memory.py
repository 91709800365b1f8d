"""The memory of an asset's operating states: the levels and noise it has shown while normal.

A machine's normal is not one operating point but several (idle, jobs at different loads,
changeover, warm-up); `StateMemory` keeps up to ``capacity`` of them as vectors of smoothed
metric levels with their noise (roughness), learned from readings the model accepted. It
answers the question the detector asks of every metric: given where the *other* metrics
are, what should this one read? (the nearest remembered state by the others, MSET's
similarity idea reduced to one neighbour), and how far is the asset from anything seen?
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]


class StateMemory:
    """Remembered operating states (levels and roughness), with their counts.

    Parameters
    ----------
    capacity
        States kept at most; beyond it the two closest merge (weighted by their counts).
    radius
        A reading further than this (in smoothed-noise units, over all metrics) from every
        state may become a new one, when the detector allows it (while the asset changes state).
    rate
        Slowest learning rate of a state's levels: each accepted reading moves its state by at
        least 1/count and at most this, so a state follows slow normal drift (ambient
        temperature) with a memory of 1/rate readings.

    Examples
    --------
    >>> memory = StateMemory()
    >>> sl = np.array([1.0, 1.0])
    >>> memory.learn(np.array([0.0, 0.0]), np.zeros(2), sl, new_state=True)
    >>> memory.learn(np.array([100.0, 50.0]), np.zeros(2), sl, new_state=True)
    >>> len(memory)
    2
    >>> # metric 0 given metric 1 at 10: the first state; metric 1 given metric 0: the second
    >>> memory.expected(np.array([100.0, 10.0]), sl)[0].tolist()
    [0.0, 50.0]
    """

    def __init__(self, capacity: int = 24, radius: float = 6.0, rate: float = 1 / 600) -> None:
        self.capacity = capacity
        self.radius = radius
        self.rate = rate
        self.levels: Vector = np.zeros((0, 0))
        self.noise: Vector = np.zeros((0, 0))
        self.counts: Vector = np.zeros(0)

    def __len__(self) -> int:
        return len(self.counts)

    def nearest(self, level: Vector, sl: Vector) -> int:
        """Index of the state closest to `level` over all metrics (-1 when empty)."""
        if len(self) < 2:  # none, or the only one (no need to measure: a steady machine)
            return len(self) - 1
        return int((((self.levels - level) / sl) ** 2).sum(axis=1).argmin())

    def expected(self, level: Vector, sl: Vector) -> tuple[Vector, Vector, NDArray[np.intp]]:
        """Per metric: its level in the state nearest by the others, their distance, the state.

        The distance is in support units, of the others from that state; the state is its
        index in the memory.

        The support unit of a metric is the larger of its smoothed noise and a twentieth of
        the range it spans across states: "near" means near on the scale the states differ on.
        """
        diff = self.levels - level
        support = self.support(sl)
        squares = (diff / support) ** 2
        others = np.sqrt(np.maximum(squares.sum(axis=1)[:, None] - squares, 0.0))
        if len(self) == 1:  # the only state is the nearest for every metric
            return self.levels[0].copy(), others[0], np.zeros(level.shape[0], dtype=np.intp)
        # Among the states as near by the others (within one support unit), the one nearest
        # by the metric itself: two states the others cannot tell apart are both normal.
        tied = others <= others.min(axis=0) + 1.0
        nearest = np.where(tied, np.abs(diff), np.inf).argmin(axis=0)
        columns = np.arange(level.shape[0])
        return self.levels[nearest, columns], others[nearest, columns], nearest

    def support(self, sl: Vector) -> Vector:
        """Each metric's support unit: its smoothed noise, or a twentieth of its range."""
        spread: Vector = np.maximum(sl, 0.05 * (self.levels.max(axis=0) - self.levels.min(axis=0)))
        return spread

    def learn(
        self,
        level: Vector,
        rough: Vector,
        sl: Vector,
        *,
        new_state: bool,
        count: float = 1.0,
        nearest: int = -1,
    ) -> None:
        """Learn an accepted reading: it moves its nearest state, or starts a new one.

        A new state starts only when `new_state` (the detector allows it) and the reading is
        further than `radius` from every state; `count` weighs it (a verdict of "normal" from
        maintenance staff teaches a whole episode at once). `nearest`, when given and no new
        state may start, is the state to move (the caller found it a moment ago).
        """
        if not len(self):
            self._add(level, rough, count)
            return
        if not new_state and 0 <= nearest < len(self):
            k = nearest
        else:
            distances = (((self.levels - level) / sl) ** 2).sum(axis=1)
            k = int(distances.argmin())
            if new_state and distances[k] > self.radius**2:
                if len(self) >= self.capacity:
                    self._merge(sl)
                self._add(level, rough, count)
                return
        self.counts[k] += count
        weight = max(count / self.counts[k], self.rate * count)
        weight = min(weight, 1.0)
        levels, noise = self.levels[k], self.noise[k]  # views: moved in place
        levels += weight * (level - levels)
        noise += weight * (rough - noise)

    def _add(self, level: Vector, rough: Vector, count: float) -> None:
        if not len(self):
            self.levels = level[None, :].copy()
            self.noise = rough[None, :].copy()
            self.counts = np.array([count])
            return
        self.levels = np.vstack([self.levels, level])
        self.noise = np.vstack([self.noise, rough])
        self.counts = np.append(self.counts, count)

    def _merge(self, sl: Vector) -> None:
        """Merge the two closest states into one (weighted by how often each was seen).

        Closest in support units, the scale the states differ on: the many states a lagging
        temperature leaves as it warms through one load merge before two loads do.
        """
        scaled = self.levels / self.support(sl)
        distances = ((scaled[:, None, :] - scaled[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(distances, np.inf)
        a, b = np.unravel_index(int(distances.argmin()), distances.shape)
        na, nb = self.counts[a], self.counts[b]
        self.levels[a] = (na * self.levels[a] + nb * self.levels[b]) / (na + nb)
        self.noise[a] = (na * self.noise[a] + nb * self.noise[b]) / (na + nb)
        self.counts[a] = na + nb
        self.levels = np.delete(self.levels, b, axis=0)
        self.noise = np.delete(self.noise, b, axis=0)
        self.counts = np.delete(self.counts, b)

    def span(self) -> Vector:
        """Largest magnitude of each metric over the states (0 when empty)."""
        return np.abs(self.levels).max(axis=0) if len(self) else np.zeros(0)
