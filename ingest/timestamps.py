"""A payload's ``ts``: an RFC 3339 string or a Unix epoch number, to nanoseconds.

The grammar itself is `common.timestamps`; this module turns its refusals into the
``bad_timestamp`` dead letters of ingest.
"""

from __future__ import annotations

from common.timestamps import TimestampError, parse_epoch, parse_rfc3339
from ingest.errors import Reason, RejectedMessage


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
        try:
            ns = parse_rfc3339(value)
        except TimestampError as exc:
            raise RejectedMessage(Reason.BAD_TIMESTAMP, f"ts {exc}") from None
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
