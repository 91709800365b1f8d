"""Recurring time intervals (`alerts.timeintervals`).

What each field selects, the short form of ``silence add --every``, and the errors a bad one
gives at start-up.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from alerts.errors import RulesError
from alerts.settings import AlertsSettings, load
from alerts.timeintervals import (
    NamedTimeInterval,
    TimeInterval,
    TimeIntervalSpec,
    Window,
    describe,
    parse_every,
)

UTC = ZoneInfo("UTC")


def _ns(*when: int, zone: ZoneInfo = UTC) -> int:
    return int(datetime(*when, tzinfo=zone).timestamp() * 1e9)  # type: ignore[misc]


def _interval(**spec: Any) -> TimeInterval:
    return TimeInterval.of(TimeIntervalSpec.model_validate(spec))


# --- what each field selects ----------------------------------------------------------------

MONDAY_MORNING = {"weekdays": ["monday"], "times": [{"start_time": "06:00", "end_time": "08:00"}]}


def test_a_weekly_window_holds_from_its_start_up_to_its_end() -> None:
    """Monday 06:00-08:00: in at 06:00 and 07:59, out at 08:00 and on Tuesday at 07:00."""
    window = _interval(**MONDAY_MORNING)
    assert window.contains(_ns(2026, 12, 7, 6, 0))
    assert window.contains(_ns(2026, 12, 7, 7, 59))
    assert not window.contains(_ns(2026, 12, 7, 8, 0))
    assert not window.contains(_ns(2026, 12, 8, 7, 0))


def test_a_window_is_read_in_its_time_zone() -> None:
    """06:00-08:00 in Berlin is 05:00-07:00 UTC in winter."""
    window = _interval(**MONDAY_MORNING, location="Europe/Berlin")
    assert window.contains(_ns(2026, 12, 7, 5, 30))
    assert not window.contains(_ns(2026, 12, 7, 7, 30))


def test_a_window_follows_daylight_saving_time() -> None:
    """In summer, Berlin's 06:00 is 04:00 UTC."""
    window = _interval(**MONDAY_MORNING, location="Europe/Berlin")
    assert window.contains(_ns(2026, 7, 6, 4, 30))
    assert not window.contains(_ns(2026, 7, 6, 6, 30))


def test_a_weekday_range_may_wrap_past_sunday() -> None:
    """``saturday:monday`` is Saturday, Sunday and Monday."""
    window = _interval(weekdays=["saturday:monday"])
    days = [window.contains(_ns(2026, 12, d, 12)) for d in range(5, 12)]  # Sat 5 ... Fri 11
    assert days == [True, True, True, False, False, False, False]


def test_negative_days_of_month_count_from_the_end() -> None:
    """``-1`` is the last day: the 28th of February 2026, the 31st of March."""
    window = _interval(days_of_month=["-1"])
    assert window.contains(_ns(2026, 2, 28, 12))
    assert not window.contains(_ns(2026, 3, 28, 12))
    assert window.contains(_ns(2026, 3, 31, 12))


def test_months_and_years_select_a_season() -> None:
    """``months: [june:august]``, ``years: [2026]``: summer 2026 only."""
    window = _interval(months=["june:august"], years=["2026"])
    assert window.contains(_ns(2026, 7, 1))
    assert not window.contains(_ns(2026, 9, 1))
    assert not window.contains(_ns(2027, 7, 1))


def test_an_end_of_24_00_takes_the_day_to_midnight() -> None:
    """``22:00-24:00`` holds at 23:59 and not at 00:00 of the next day."""
    window = _interval(times=[{"start_time": "22:00", "end_time": "24:00"}])
    assert window.contains(_ns(2026, 12, 7, 23, 59))
    assert not window.contains(_ns(2026, 12, 8, 0, 0))


def test_a_named_interval_holds_when_any_of_its_intervals_does() -> None:
    """Weekend or weekday nights: both select."""
    named = NamedTimeInterval.model_validate(
        {
            "name": "quiet",
            "time_intervals": [
                {"weekdays": ["saturday:sunday"]},
                {"times": [{"start_time": "00:00", "end_time": "06:00"}]},
            ],
        }
    )
    window = Window.of(named)
    assert window.contains(_ns(2026, 12, 5, 12))  # Saturday noon
    assert window.contains(_ns(2026, 12, 8, 3))  # Tuesday 03:00
    assert not window.contains(_ns(2026, 12, 8, 12))


# --- the short form of --every ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("mon 06:00-08:00", (2026, 12, 7, 6, 30), (2026, 12, 14, 8, 30)),
        ("mon-fri 22:00-24:00", (2026, 12, 11, 23), (2026, 12, 12, 23)),
        ("sat,sun", (2026, 12, 6, 9), (2026, 12, 7, 9)),
        ("06:00-07:00,12:00-13:00", (2026, 12, 9, 12, 30), (2026, 12, 9, 9)),
    ],
)
def test_every_reads_weekdays_and_times_of_day(
    text: str, inside: tuple[int, ...], outside: tuple[int, ...]
) -> None:
    """Weekdays (lists and ranges), time ranges (lists); no weekdays means every day."""
    window = TimeInterval.of(parse_every(text))
    assert window.contains(_ns(*inside))
    assert not window.contains(_ns(*outside))


def test_every_takes_a_time_zone() -> None:
    """An IANA zone word sets where the times are read."""
    assert parse_every("mon 06:00-08:00 Europe/Berlin").location == "Europe/Berlin"


def test_describe_gives_the_short_form_back() -> None:
    """A spec reads back as it was written (for listings and health reasons)."""
    assert describe(parse_every("mon-fri 22:00-24:00 Europe/Berlin")) == (
        "mon-fri 22:00-24:00 Europe/Berlin"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "needs weekdays, a time range or both"),
        ("funday 06:00-08:00", "'funday' is not a weekday"),
        ("mon 6-8", "time '6' is not HH:MM"),
        ("mon 06:00", "'06:00' is not a time range"),
        ("mon 08:00-06:00", "ends before it starts: a window over midnight is two ranges"),
        ("mon 06:00-08:00 Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ],
)
def test_a_bad_every_names_the_problem(text: str, problem: str) -> None:
    """Each mistake is a `ValueError` whose message says what is wrong."""
    with pytest.raises(ValueError, match=problem) as info:
        parse_every(text)
    assert not isinstance(info.value, ValidationError)


# --- the config: named intervals, routes that use them, errors at start-up ------------------

ROUTES = """\
time_intervals:
  - name: compressor-service
    time_intervals:
      - weekdays: [monday]
        times: [{start_time: "06:00", end_time: "08:00"}]
        location: Europe/Berlin
route:
  receivers: [mqtt, log]
  routes:
    - matchers: [kind=compressor]
      mute_time_intervals: [compressor-service]
"""


def _routes(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(RulesError) as info:
        load(AlertsSettings(routes_file=path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_route_mutes_in_its_named_interval(tmp_path: Path) -> None:
    """The compressors' route is muted Monday 06:00-08:00 Berlin time, and only then."""
    route = load(AlertsSettings(routes_file=_routes(tmp_path, ROUTES))).route
    (compressors,) = route.match({"kind": "compressor", "site": "lyon", "asset": "c-1"})
    muted = compressors.muted_at(_ns(2026, 12, 7, 6, 30, zone=ZoneInfo("Europe/Berlin")))
    assert muted is not None and muted.name == "compressor-service"
    assert compressors.muted_at(_ns(2026, 12, 7, 9, 0, zone=ZoneInfo("Europe/Berlin"))) is None
    assert route.muted_at(_ns(2026, 12, 7, 6, 30, zone=ZoneInfo("Europe/Berlin"))) is None


def test_a_route_with_active_intervals_is_muted_outside_them(tmp_path: Path) -> None:
    """``active_time_intervals``: told only in working hours; a mute interval wins."""
    text = ROUTES.replace(
        "      mute_time_intervals: [compressor-service]",
        "      active_time_intervals: [compressor-service]",
    )
    route = load(AlertsSettings(routes_file=_routes(tmp_path, text))).route
    (compressors,) = route.match({"kind": "compressor"})
    assert compressors.muted_at(_ns(2026, 12, 7, 6, 30, zone=ZoneInfo("Europe/Berlin"))) is None
    assert compressors.muted_at(_ns(2026, 12, 7, 12, 0)) is not None


def test_an_asset_is_in_maintenance_only_where_all_its_routes_are_muted(
    tmp_path: Path,
) -> None:
    """The compressor is in its window; a CNC mill (the root route) is not."""
    route = load(AlertsSettings(routes_file=_routes(tmp_path, ROUTES))).route
    at = _ns(2026, 12, 7, 6, 30, zone=ZoneInfo("Europe/Berlin"))
    window = route.maintenance_window({"site": "lyon", "asset": "c-1", "kind": "compressor"}, at)
    assert window is not None and window.name == "compressor-service"
    assert route.maintenance_window({"site": "lyon", "asset": "m-1", "kind": "cnc"}, at) is None


@pytest.mark.parametrize(
    ("written", "wrong", "line", "key", "problem"),
    [
        (
            'start_time: "06:00"',
            'start_time: "6am"',
            5,
            "time_intervals[0].time_intervals[0].times[0]",
            "time '6am' is not HH:MM",
        ),
        (
            "weekdays: [monday]",
            "weekdays: [funday]",
            4,
            "time_intervals[0].time_intervals[0].weekdays",
            "'funday' is not a weekday",
        ),
        (
            "location: Europe/Berlin",
            "location: Mars/Olympus",
            6,
            "time_intervals[0].time_intervals[0].location",
            "'Mars/Olympus' is not a time zone",
        ),
        (
            "mute_time_intervals: [compressor-service]",
            "mute_time_intervals: [weekend]",
            11,
            "route.routes[0].mute_time_intervals",
            "time interval 'weekend' is not defined (time_intervals: compressor-service)",
        ),
        (
            "  receivers: [mqtt, log]\n",
            "  receivers: [mqtt, log]\n  mute_time_intervals: [compressor-service]\n",
            9,
            "route.mute_time_intervals",
            "the root route cannot have time intervals",
        ),
    ],
    ids=["bad-time", "bad-weekday", "bad-location", "undefined-name", "on-the-root"],
)
def test_a_bad_interval_stops_start_up_naming_the_file_line_and_problem(
    tmp_path: Path, written: str, wrong: str, line: int, key: str, problem: str
) -> None:
    """One line: the routes file, the line and key of the mistake, and what is wrong."""
    assert written in ROUTES
    path = _routes(tmp_path, ROUTES.replace(written, wrong, 1))
    message = _error(path)
    assert message.startswith(f"{path}: line {line} ({key}): ")
    assert problem in message


def test_time_intervals_in_the_main_config_work_as_in_the_routes_file() -> None:
    """Under ``alerts:`` directly, the same keys build the same windows."""
    import yaml

    settings = AlertsSettings.model_validate(yaml.safe_load(ROUTES))
    (compressors,) = load(settings).route.match({"kind": "compressor"})
    assert [w.name for w in compressors.mute_windows] == ["compressor-service"]
