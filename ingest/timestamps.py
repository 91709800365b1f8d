"""Reading timestamps: RFC 3339 strings and Unix epoch numbers to nanoseconds.

DESIGN.md: an epoch number is in seconds; values above 1e11 are milliseconds, above 1e14
microseconds, above 1e17 nanoseconds. Float epochs keep microsecond precision (a double cannot
hold nanoseconds of the current epoch), integer epochs are exact.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

from ingest.errors import Reason, RejectedMessage

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d must not match other scripts' digits
)


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 timestamp (with a zone) into nanoseconds since the epoch.

    Examples
    --------
    >>> parse_rfc3339("2026-11-24T12:00:00.125Z")
    1795521600125000000
    >>> parse_rfc3339("2026-11-24T13:00:00.125+01:00")
    1795521600125000000
    >>> parse_rfc3339("2026-11-24T12:00:00")
    Traceback (most recent call last):
    ...
    ingest.errors.RejectedMessage: bad_timestamp: ts '2026-11-24T12:00:00' is not RFC 3339 \
(e.g. 2026-11-24T12:00:00.125Z; the zone is required)
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise RejectedMessage(
            Reason.BAD_TIMESTAMP,
            f"ts {text!r} is not RFC 3339 (e.g. 2026-11-24T12:00:00.125Z; the zone is required)",
        )
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        # Validates the calendar (month 13, Feb 30); a leap second 60 is allowed by RFC 3339.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as exc:
        raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {text!r}: {exc}") from None
    if second > 60:
        raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {text!r}: second out of range")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if m.group(9):
        hours, minutes = int(m.group(10)), int(m.group(11))
        if hours > 23 or minutes > 59:
            raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {text!r}: zone offset out of range")
        offset = hours * 3600 + minutes * 60
        seconds -= offset if m.group(9) == "+" else -offset
    fraction = m.group(7)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return seconds * 1_000_000_000 + nanos


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
    # DESIGN.md's magnitude rule; an if-chain, since this runs once per reading.
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


def parse_ts(value: object) -> int:
    """Parse a payload's ``ts`` (string or number) into nanoseconds; reject other types.

    Examples
    --------
    >>> parse_ts("1970-01-01T00:00:01Z"), parse_ts(1.5), parse_ts(1_500)
    (1000000000, 1500000000, 1500000000000)
    >>> parse_ts(True)
    Traceback (most recent call last):
    ...
    ingest.errors.RejectedMessage: bad_timestamp: ts must be an RFC 3339 string or an epoch \
number, got bool
    """
    if isinstance(value, str):
        ns = parse_rfc3339(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ns = parse_epoch(value)  # finite: the decoder's JSON parser admits no NaN or Infinity
    else:
        raise RejectedMessage(
            Reason.BAD_TIMESTAMP,
            f"ts must be an RFC 3339 string or an epoch number, got {type(value).__name__}",
        )
    if ns < 0:
        raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {value!r} is before 1970-01-01")
    return ns


def format_rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 in UTC, to the millisecond.

    Examples
    --------
    >>> format_rfc3339(1795521600125000000)
    '2026-11-24T12:00:00.125Z'
    """
    moment = datetime.fromtimestamp(ns / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
