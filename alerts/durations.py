"""Durations as people write them in rules and commands: ``30s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Seconds in a duration string (or a number of seconds).

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("250ms"), parse_duration(12)
    (5400.0, 0.25, 12.0)
    >>> parse_duration("5 minutes")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration '5 minutes' (write it like 30s, 5m, 1h30m or 2d)
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r} (write it like 30s, 5m, 1h30m or 2d)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: it cannot be negative")
        return float(value)
    text = str(value).strip()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r} (write it like 30s, 5m, 1h30m or 2d)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


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
