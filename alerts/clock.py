"""The fleet's clock: event time, as docs/design.md §9 measures "no data for 5 minutes".

It reads the newest reading timestamp seen from the whole fleet, so durations in a replay at
100x speed come out as they did in the original stream. Only when the whole fleet has been
silent for a while does it move on with the wall clock, or an offline fleet would never be
noticed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds of wall time without a single reading before the clock follows the wall clock.
#: Longer than a batch's linger and a broker's reconnect, shorter than any sane deadman.
SILENCE_GRACE = 5.0


class FleetClock:
    """Event time of the fleet, in nanoseconds.

    Parameters
    ----------
    newest
        The newest event time seen (restored after a restart).
    wall
        Wall-clock seconds (injectable for tests).

    Examples
    --------
    >>> wall = [1000.0]
    >>> clock = FleetClock(wall=lambda: wall[0])
    >>> clock.heard(); clock.observe(5_000_000_000)
    >>> clock.now()
    5000000000
    >>> wall[0] += 60  # a minute without any reading
    >>> clock.now()
    65000000000
    """

    def __init__(self, newest: int = 0, wall: Callable[[], float] = time.time) -> None:
        self.newest = newest
        self.wall = wall
        # Time spent not listening (a restart) is not the fleet's silence: count from now.
        self._heard_at = wall()

    def heard(self) -> None:
        """Readings arrived (once per batch: the wall clock is not read per reading)."""
        self._heard_at = self.wall()

    def observe(self, ts: int) -> None:
        """A reading with event time `ts` arrived (after `heard` for its batch)."""
        if ts > self.newest:
            self.newest = ts

    def now(self) -> int:
        """Event time now: the newest seen, plus the wall time of a fleet-wide silence."""
        silent = self.wall() - self._heard_at
        if silent >= SILENCE_GRACE:
            return self.newest + int(silent * 1e9)
        return self.newest
