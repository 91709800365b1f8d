"""Durations as people write them in rules, fleet files and commands: ``30s``, ``1h30m``, ``90``.

One grammar for every command and file (issue 12): a number of seconds, or one or more
``<number><unit>`` parts, Prometheus and Alertmanager style, with units ``ms``, ``s``, ``m``,
``h``, ``d`` and ``w``. Blanks around the text, between parts and between a number and its unit
are allowed (``1h 30m``, ``10 m``); signs, exponents and words are not.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Duration", "DurationError", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# "ms" before "m", so that 250ms is not read as 250 minutes and a stray "s".
_PART = rf"({_NUMBER})\s*(ms|s|m|h|d|w)"
_PARTS = re.compile(rf"(?:{_PART}\s*)+", re.ASCII)
_PART_RE = re.compile(_PART, re.ASCII)
_SECONDS = re.compile(_NUMBER, re.ASCII)
_HINT = "write it like 30s, 5m, 1h30m or 2d"


class DurationError(ValueError):
    """A value that is not a duration (or not one allowed here); ``value`` is what was given.

    A `ValueError`, so that pydantic reports it as the field's validation error.
    """

    def __init__(self, value: object, problem: str | None = None) -> None:
        self.value = value
        shown = value.strip() if isinstance(value, str) else value
        why = f" ({_HINT})" if problem is None else f": {problem}"
        super().__init__(f"invalid duration {shown!r}{why}")


def parse_duration(value: object, *, positive: bool = False) -> float:
    """Seconds in a duration string (or a number of seconds); `DurationError` when it is none.

    With ``positive``, zero is refused too (a command's time limit must be above 0).

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("250ms"), parse_duration(12), parse_duration("2.5")
    (5400.0, 0.25, 12.0, 2.5)
    >>> parse_duration("5 minutes")
    Traceback (most recent call last):
    ...
    common.durations.DurationError: invalid duration '5 minutes' (write it like 30s, 5m, 1h30m \
or 2d)
    >>> parse_duration("0s", positive=True)
    Traceback (most recent call last):
    ...
    common.durations.DurationError: invalid duration '0s': it must be above 0
    """
    if isinstance(value, bool):
        raise DurationError(value)
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(value, "it cannot be negative")
        seconds = float(value)
    else:
        text = str(value).strip()
        if _SECONDS.fullmatch(text):
            seconds = float(text)
        elif _PARTS.fullmatch(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART_RE.findall(text))
        else:
            raise DurationError(value)
    if positive and seconds <= 0:
        raise DurationError(value, "it must be above 0")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form, as the templates' ``{duration}`` shows it.

    Examples
    --------
    >>> format_duration(5400), format_duration(42.4), format_duration(0.2), format_duration(90060)
    ('1h30m', '42s', '0s', '1d1h1m')
    """
    left = int(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            out.append(f"{left // size}{unit}")
            left %= size
    if left or not out:
        out.append(f"{left}s")
    return "".join(out)


#: A settings field holding a duration in seconds, written as ``30s``, ``5m`` or a number.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
