"""Timestamps as nanoseconds since the epoch: RFC 3339 text and Unix epoch numbers.

One parser and one formatter of RFC 3339 for every layer and the simulators: the payloads'
``ts``, the alerts' ``started_at``, the ground-truth labels and the CLI's ``--starts-at``.
docs/design.md §2: an epoch number is in seconds; values above 1e11 are milliseconds, above 1e14
microseconds, above 1e17 nanoseconds. Float epochs keep microsecond precision (a double cannot
hold nanoseconds of the current epoch), integer epochs are exact.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

__all__ = ["TimestampError", "format_rfc3339", "parse_epoch", "parse_rfc3339"]

_NS = 1_000_000_000
_MS = 1_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d must not match other scripts' digits
)


class TimestampError(ValueError):
    """A text that is not an RFC 3339 time; ``text`` is what was given, the message says why."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        super().__init__(f"{text!r}{problem}")


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp (with a zone) into nanoseconds since the epoch.

    Exact to the nanosecond (no float on the way); a leap second (``:60``) is allowed.

    Examples
    --------
    >>> parse_rfc3339("2026-11-24T12:00:00.125Z")
    1795521600125000000
    >>> parse_rfc3339("2026-11-24T13:00:00.125+01:00")
    1795521600125000000
    >>> parse_rfc3339("2026-11-24T12:00:00")
    Traceback (most recent call last):
    ...
    common.timestamps.TimestampError: '2026-11-24T12:00:00' is not RFC 3339 \
(e.g. 2026-11-24T12:00:00.125Z; the zone is required)
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise TimestampError(
            text, " is not RFC 3339 (e.g. 2026-11-24T12:00:00.125Z; the zone is required)"
        )
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        # Validates the calendar (month 13, Feb 30); a leap second 60 is allowed by RFC 3339.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as exc:
        raise TimestampError(text, f": {exc}") from None
    if second > 60:
        raise TimestampError(text, ": second out of range")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if m.group(9):
        hours, minutes = int(m.group(10)), int(m.group(11))
        if hours > 23 or minutes > 59:
            raise TimestampError(text, ": zone offset out of range")
        offset = hours * 3600 + minutes * 60
        seconds -= offset if m.group(9) == "+" else -offset
    fraction = m.group(7)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return seconds * _NS + nanos


def format_rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 in UTC, to the millisecond (truncated, exact).

    Examples
    --------
    >>> format_rfc3339(1795521600125000000), format_rfc3339(1795521600124999999)
    ('2026-11-24T12:00:00.125Z', '2026-11-24T12:00:00.124Z')
    """
    seconds, rest = divmod(ns, _NS)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // _MS:03d}Z"


def parse_epoch(value: float) -> int:
    """Convert a Unix epoch number in s, ms, µs or ns (by magnitude) to nanoseconds.

    Examples
    --------
    >>> parse_epoch(1795521600)
    1795521600000000000
    >>> parse_epoch(1795521600125)
    1795521600125000000
    >>> parse_epoch(1795521600.125)
    1795521600125000000
    """
    # docs/design.md §2's magnitude rule; an if-chain, since this runs once per reading.
    if value > 1e17:
        ns_per_unit = 1
    elif value > 1e14:
        ns_per_unit = 1_000
    elif value > 1e11:
        ns_per_unit = 1_000_000
    else:
        ns_per_unit = 1_000_000_000
    if isinstance(value, int):
        return value * ns_per_unit
    if ns_per_unit == 1:
        return round(value)
    # Round at microseconds: below that, a double of today's epoch holds only noise.
    return round(value * (ns_per_unit // 1000)) * 1000
