"""RFC 3339 and epoch timestamps as nanoseconds (common/timestamps.py)."""

from __future__ import annotations

import pytest

from common.timestamps import TimestampError, format_rfc3339, parse_epoch, parse_rfc3339

NS = 1_000_000_000
T0 = 1_795_521_600 * NS  # 2026-11-24T12:00:00Z


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-11-24T12:00:00Z", T0),
        ("2026-11-24T12:00:00.125Z", T0 + 125_000_000),
        ("2026-11-24T12:00:00.123456789Z", T0 + 123_456_789),
        ("2026-11-24t12:00:00z", T0),
        ("2026-11-24 12:00:00Z", T0),
        ("2026-11-24T13:30:00+01:30", T0),
        ("2026-11-24T10:00:00-02:00", T0),
        ("2016-12-31T23:59:60Z", 1_483_228_800 * NS),
    ],
    ids=["z", "millis", "nanos", "lower-case", "space", "plus-offset", "minus-offset", "leap"],
)
def test_rfc3339_parses_to_exact_nanoseconds(text: str, ns: int) -> None:
    """Zones and fractions to nine digits are read exactly; a leap second is the next second."""
    assert parse_rfc3339(text) == ns


def test_parse_rfc3339_is_exact_at_nanoseconds() -> None:
    """parse_rfc3339 keeps all nine fractional digits without float rounding."""
    assert parse_rfc3339("2262-04-11T23:47:16.854775807Z") == 2**63 - 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-11-24T12:00:00", "is not RFC 3339"),
        ("yesterday", "is not RFC 3339"),
        ("٢٠٢٦-11-24T12:00:00Z", "is not RFC 3339"),
        ("2026-02-30T12:00:00Z", ": day is out of range for month"),
        ("2026-11-24T12:00:61Z", ": second out of range"),
        ("2026-11-24T12:00:00+24:00", ": zone offset out of range"),
    ],
    ids=["no-zone", "word", "non-ascii-digits", "feb-30", "second-61", "offset-24h"],
)
def test_bad_rfc3339_is_a_timestamp_error_quoting_the_text(text: str, says: str) -> None:
    """A refusal is a TimestampError (a ValueError) whose message starts with the text."""
    with pytest.raises(TimestampError) as caught:
        parse_rfc3339(text)
    assert isinstance(caught.value, ValueError)
    assert caught.value.text == text
    assert str(caught.value).startswith(repr(text))
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (T0, "2026-11-24T12:00:00.000Z"),
        (T0 + 125_000_000, "2026-11-24T12:00:00.125Z"),
        (T0 + 999_999_999, "2026-11-24T12:00:00.999Z"),
        (0, "1970-01-01T00:00:00.000Z"),
    ],
    ids=["whole", "millis", "truncated-not-rounded", "epoch"],
)
def test_format_rfc3339_is_utc_to_the_millisecond(ns: int, text: str) -> None:
    """The format is UTC with a Z and three fraction digits, truncated, and parses back."""
    assert format_rfc3339(ns) == text
    assert parse_rfc3339(text) == ns - ns % 1_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100_000_000_000, 100_000_000_000 * NS),
        (100_000_000_001, 100_000_000_001 * 1_000_000),
        (100_000_000_000_000, 100_000_000_000_000 * 1_000_000),
        (100_000_000_000_001, 100_000_000_000_001 * 1_000),
        (100_000_000_000_000_000, 100_000_000_000_000_000 * 1_000),
        (100_000_000_000_000_001, 100_000_000_000_000_001),
        (0, 0),
    ],
    ids=[
        "1e11-is-s",
        "above-1e11-is-ms",
        "1e14-is-ms",
        "above-1e14-is-us",
        "1e17-is-us",
        "above-1e17-is-ns",
        "zero",
    ],
)
def test_epoch_unit_bounds_are_exclusive(value: int, expected: int) -> None:
    """A value exactly at 1e11, 1e14 or 1e17 still counts in the smaller unit."""
    assert parse_epoch(value) == expected
