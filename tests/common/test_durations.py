"""The one duration grammar of rules, fleet files and commands (common/durations.py)."""

from __future__ import annotations

import pytest

from common.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("20m", 1200.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("1h30m15s500ms", 5415.5),
        ("2", 2.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("5.", 5.0),
        (" 5m ", 300.0),
        ("10 m", 600.0),
        ("1h 30m", 5400.0),
        ("0s", 0.0),
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
    ids=lambda v: repr(v),
)
def test_accepted_forms_read_as_seconds(value: object, seconds: float) -> None:
    """Seconds as a number or text, or <number><unit> parts in ms, s, m, h, d and w."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["soon", "5 minutes", "", "1x", "h", "1h30", "-5", "+5", "-5s", "1e3", "inf", "nan", "1_000",
     "3 0m", "1.2.3s", "٣s", True],
    ids=repr,
)  # fmt: skip
def test_refused_forms_name_the_text(value: object) -> None:
    """Anything else is a DurationError (a ValueError) whose message quotes the text."""
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.value == value
    assert str(caught.value) == f"invalid duration {value!r} (write it like 30s, 5m, 1h30m or 2d)"


def test_a_negative_number_is_refused() -> None:
    """A negative number of seconds is not a duration."""
    with pytest.raises(DurationError, match=r"^invalid duration -1: it cannot be negative$"):
        parse_duration(-1)


@pytest.mark.parametrize("value", ["0s", "0", 0, "0ms"], ids=repr)
def test_positive_refuses_zero(value: object) -> None:
    """``positive=True`` refuses a zero duration, as a command's time limit must be above 0."""
    with pytest.raises(DurationError, match=r"it must be above 0$"):
        parse_duration(value, positive=True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.9, "0s"), (59, "59s"), (60, "1m"), (5400, "1h30m"), (86400, "1d"),
     (90061, "1d1h1m1s")],
)  # fmt: skip
def test_format_duration_is_short_and_reads_back(seconds: float, text: str) -> None:
    """The human form drops zero units, shows whole seconds and parses back to those seconds."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == int(seconds)
