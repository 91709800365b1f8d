"""Logging at a bounded rate, so a flood of bad input cannot flood the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class ThrottledLog:
    """Logs at most one record per key per `interval` seconds, and counts what it held back.

    The next record logged for a key says how many were suppressed since the last one.

    Examples
    --------
    >>> import logging, sys
    >>> logger = logging.getLogger("doctest.throttle")
    >>> logger.addHandler(logging.StreamHandler(sys.stdout)); logger.propagate = False
    >>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
    >>> t = ThrottledLog(logger, interval=10.0, clock=clock)
    >>> for n in range(4):
    ...     t.warning("bad_json", "rejected message %d", n)
    rejected message 0
    rejected message 3 (2 similar suppressed)
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log a warning under `key` unless one was logged less than `interval` ago."""
        self._emit(logging.WARNING, key, msg, args)

    def error(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log an error under `key`, throttled like `warning`."""
        self._emit(logging.ERROR, key, msg, args, exc_info)

    def _emit(
        self, level: int, key: str, msg: str, args: tuple[object, ...], exc_info: bool = False
    ) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg = f"{msg} ({suppressed} similar suppressed)"
        self._logger.log(level, msg, *args, exc_info=exc_info)
