"""Sequence gaps: readings a sensor numbered but that never arrived.

A payload's optional ``seq`` counts up per asset. A jump forward means readings were lost
before they reached the broker (a sensor buffer overflow, a QoS 0 hop); a step back or a
repeat is a restart or a redelivery and is not a gap.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.base import Reading

# Assets tracked at most; beyond, the table starts over (a gap may then go unseen once).
_MAX_ASSETS = 1_000_000
# Redeliveries step back at most one in-flight window (MQTT's Receive Maximum is at most
# 65,535); a larger step back is a sensor that restarted its count.
_RESTART_STEP = 65_535


class GapTracker:
    """Counts readings missing between consecutive ``seq`` numbers of each asset.

    Examples
    --------
    >>> g = GapTracker()
    >>> g.observe([Reading("s", "a", None, 1, {"t": 1.0}, seq=s) for s in (1, 2, 5, 5, 3, 6)])
    [('s', 'a', 2, 5)]
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def observe(self, readings: Iterable[Reading]) -> list[tuple[str, str, int, int]]:
        """Record the readings' ``seq``; return (site, asset, missing, seq) for each gap."""
        gaps = []
        last = self._last
        for r in readings:
            if r.seq is None:
                continue
            key = (r.site, r.asset)
            previous = last.get(key)
            if previous is not None and r.seq > previous + 1:
                gaps.append((r.site, r.asset, r.seq - previous - 1, r.seq))
            if previous is None or r.seq > previous or r.seq < previous - _RESTART_STEP:
                if len(last) >= _MAX_ASSETS:
                    last.clear()
                last[key] = r.seq
        return gaps
