"""Unit tests of rate-limited logging (`ingest.logthrottle`), with an injected clock."""

from __future__ import annotations

import logging

import pytest

from ingest.logthrottle import ThrottledLog

LOGGER = "tests.ingest.logthrottle"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """Return a hand-driven clock."""
    return Clock()


@pytest.fixture
def throttle(clock: Clock, caplog: pytest.LogCaptureFixture) -> ThrottledLog:
    """Return a throttle of 10 s on the test logger, with caplog capturing everything."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return ThrottledLog(logging.getLogger(LOGGER), interval=10.0, clock=clock)


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_first_record_of_a_key_is_logged(
    throttle: ThrottledLog, caplog: pytest.LogCaptureFixture
) -> None:
    """The first record of a key is logged with its arguments."""
    throttle.warning("bad_json", "rejected message on %s", "plant/s1/a1/telemetry")
    assert _logged(caplog) == [(logging.WARNING, "rejected message on plant/s1/a1/telemetry")]


def test_repeats_within_the_interval_are_suppressed(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Within one interval, only the first record of a key is logged."""
    for _ in range(100):
        throttle.warning("bad_json", "rejected")
        clock.now += 0.05
    assert _logged(caplog) == [(logging.WARNING, "rejected")]


def test_next_record_after_the_interval_reports_the_suppressed_count(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The first record after the interval says how many were held back."""
    for n in range(4):
        throttle.warning("bad_json", "rejected %d", n)
        clock.now += 1.0
    clock.now += 10.0
    throttle.warning("bad_json", "rejected %d", 4)
    assert _logged(caplog) == [
        (logging.WARNING, "rejected 0"),
        (logging.WARNING, "rejected 4 (3 similar suppressed)"),
    ]


def test_suppressed_count_restarts_after_being_reported(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each report counts only what was held back since the previous logged record."""
    for burst in (3, 1):
        throttle.warning("k", "m")
        for _ in range(burst):
            throttle.warning("k", "m")
        clock.now += 10.0
    throttle.warning("k", "m")
    assert [msg for _, msg in _logged(caplog)] == [
        "m",
        "m (3 similar suppressed)",
        "m (1 similar suppressed)",
    ]


def test_record_exactly_one_interval_later_is_logged(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A record exactly `interval` after the last logged one is logged."""
    throttle.warning("k", "first")
    clock.now += 9.999
    throttle.warning("k", "held")
    clock.now += 0.001
    throttle.warning("k", "second")
    assert [msg for _, msg in _logged(caplog)] == ["first", "second (1 similar suppressed)"]


def test_interval_counts_from_the_last_logged_record(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Suppressed records do not push the window forward."""
    for _ in range(25):  # one every second: logged at 0, 10 and 20 s
        throttle.warning("k", "m")
        clock.now += 1.0
    assert len(_logged(caplog)) == 3


def test_keys_are_throttled_independently(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A record of one key neither suppresses nor counts against another key."""
    throttle.warning("bad_json", "json")
    throttle.warning("bad_id", "id")
    throttle.warning("bad_json", "json")
    clock.now += 10.0
    throttle.warning("bad_id", "id")
    throttle.warning("bad_json", "json")
    assert [msg for _, msg in _logged(caplog)] == [
        "json",
        "id",
        "id",
        "json (1 similar suppressed)",
    ]


def test_error_records_are_logged_at_error_level(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """error() logs at ERROR level, throttled like warning()."""
    throttle.error("influx", "write failed: %s", "timeout")
    throttle.error("influx", "write failed: %s", "timeout")
    assert _logged(caplog) == [(logging.ERROR, "write failed: timeout")]


def test_message_with_percent_in_arguments_is_safe(
    throttle: ThrottledLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Arguments holding '%' are formatted as data, also in the suppressed note."""
    throttle.warning("k", "detail: %s", "100% bad")
    throttle.warning("k", "detail: %s", "100% bad")
    clock.now += 10.0
    throttle.warning("k", "detail: %s", "50%s")
    assert [msg for _, msg in _logged(caplog)] == [
        "detail: 100% bad",
        "detail: 50%s (1 similar suppressed)",
    ]
