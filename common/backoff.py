"""Exponential backoff with jitter, shared by reconnects and storage retries."""

from __future__ import annotations

import random


def backoff(failures: int, low: float, high: float) -> float:
    """Delay before retry number `failures` (1-based): doubling from `low`, capped at `high`.

    Equal jitter (half fixed, half random) keeps a fleet of clients from retrying in step
    while never retrying sooner than half the nominal delay.

    Examples
    --------
    >>> all(0.25 <= backoff(1, 0.5, 30) <= 0.5 for _ in range(100))
    True
    >>> all(15 <= backoff(50, 0.5, 30) <= 30 for _ in range(100))
    True
    """
    cap = min(high, low * 2.0 ** min(failures - 1, 30))
    return cap / 2 + random.uniform(0, cap / 2)
