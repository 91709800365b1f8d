"""Recurring time intervals: planned maintenance windows and working hours, in event time.

Alertmanager's ``time_intervals`` and their syntax. A named interval is a list of intervals;
it holds at an instant when any of them does, and one holds when every field it sets does:
``times`` (``start_time``/``end_time`` as ``HH:MM``, the end excluded, ``24:00`` allowed),
``weekdays`` (``monday`` or ``mon``, ranges ``monday:friday``), ``days_of_month`` (``1``,
``1:5``, negatives from the end: ``-1`` is the last day), ``months`` (``january`` or ``1``,
ranges), ``years`` (``2026:2027``), in a ``location`` (an IANA time zone, UTC by default). A
field left out holds always. Routes name them as ``mute_time_intervals`` and
``active_time_intervals``; ``meshwatch silence add --every`` writes one in a short form
(`parse_every`). They are judged at event time, so a replay is muted as the live stream was.

Examples
--------
>>> window = TimeInterval.of(TimeIntervalSpec.model_validate(
...     {"weekdays": ["monday"], "times": [{"start_time": "06:00", "end_time": "08:00"}]}))
>>> from datetime import datetime, timezone
>>> ns = lambda *a: int(datetime(*a, tzinfo=timezone.utc).timestamp() * 1e9)
>>> window.contains(ns(2026, 12, 7, 6, 30)), window.contains(ns(2026, 12, 7, 8, 0))
(True, False)
>>> spec = parse_every("mon-fri 22:00-24:00 Europe/Berlin")
>>> spec.weekdays, spec.times[0].end_time, spec.location
(['monday:friday'], '24:00', 'Europe/Berlin')
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.errors import RulesError
from ingest.topic import ID_RULE

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = tuple(m.lower() for m in calendar.month_name[1:])
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_NS = 1_000_000_000


def _day_number(name: str) -> int:
    """0 for monday ... 6 for sunday; full names or their first three letters."""
    word = name.strip().lower()
    for i, day in enumerate(_DAYS):
        if word in (day, day[:3]):
            return i
    raise ValueError(f"{name!r} is not a weekday (monday ... sunday, or mon ... sun)")


def _month_number(name: str) -> int:
    """1 for january ... 12 for december; names, their first three letters, or 1-12."""
    word = name.strip().lower()
    if word.isdigit() and 1 <= int(word) <= 12:
        return int(word)
    for i, month in enumerate(_MONTHS, start=1):
        if word in (month, month[:3]):
            return i
    raise ValueError(f"{name!r} is not a month (january ... december, or 1-12)")


def _span(text: str, read: Callable[[str], int], what: str) -> tuple[int, int]:
    """``a`` or ``a:b`` read with `read`, as an inclusive (first, last) pair."""
    first, sep, last = text.partition(":")
    try:
        lo = read(first)
        hi = read(last) if sep else lo
    except ValueError as exc:
        raise ValueError(f"{what} {text!r}: {exc}" if what else str(exc)) from None
    return lo, hi


def _ordered_spans(items: list[str], read: Callable[[str], int], what: str, noun: str) -> list[str]:
    """`items`, each a `_span` that does not end before it starts (``noun range ...`` if so)."""
    for item in items:
        lo, hi = _span(item, read, what)
        if hi < lo:
            raise ValueError(f"{noun} range {item!r} ends before it starts")
    return items


def _minutes(clock: str) -> int:
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"time {clock!r} is not HH:MM (00:00 to 24:00)")
    return 24 * 60 if clock == "24:00" else int(match[1]) * 60 + int(match[2])


class TimeRange(BaseModel):
    """A time of day from ``start_time`` up to (not including) ``end_time``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: str
    end_time: str

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        start, end = _minutes(self.start_time), _minutes(self.end_time)
        if end <= start:
            raise ValueError(
                f"time range {self.start_time}-{self.end_time} ends before it starts: "
                f"a window over midnight is two ranges ({self.start_time}-24:00 and "
                f"00:00-{self.end_time}, the second on the next weekday)"
            )
        return self


class TimeIntervalSpec(BaseModel):
    """One interval as written (Alertmanager's ``time_interval``); every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times: list[TimeRange] = Field(default_factory=list)
    weekdays: list[str] = Field(default_factory=list)
    days_of_month: list[str] = Field(default_factory=list)
    months: list[str] = Field(default_factory=list)
    years: list[str] = Field(default_factory=list)
    location: str = "UTC"

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        for item in value:
            _span(item, _day_number, "")
        return value

    @field_validator("days_of_month")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        for item in value:
            lo, hi = _span(item, int, "day of month")
            for day in (lo, hi):
                if day == 0 or not -31 <= day <= 31:
                    raise ValueError(f"day of month {item!r}: days are 1 to 31, or -1 to -31")
            if (lo > 0) == (hi > 0) and hi < lo:
                raise ValueError(f"day of month range {item!r} ends before it starts")
        return value

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[str]) -> list[str]:
        return _ordered_spans(value, _month_number, "", "month")

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[str]) -> list[str]:
        return _ordered_spans(value, int, "year", "year")

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"location {value!r} is not a time zone (an IANA name: UTC, Europe/Berlin)"
            ) from None
        return value


class NamedTimeInterval(BaseModel):
    """An entry of ``time_intervals:``: a name and the intervals it stands for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=f"^{ID_RULE}$")
    time_intervals: list[TimeIntervalSpec] = Field(min_length=1)


def _ranges(items: Iterable[str], read: Callable[[str], int]) -> tuple[tuple[int, int], ...]:
    return tuple(_span(item, read, "") for item in items)


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """One built interval: `contains` says whether an instant (ns, event time) is inside."""

    times: tuple[tuple[int, int], ...]
    weekdays: frozenset[int] | None
    days_of_month: tuple[tuple[int, int], ...]
    months: frozenset[int] | None
    years: tuple[tuple[int, int], ...]
    zone: ZoneInfo

    @classmethod
    def of(cls, spec: TimeIntervalSpec) -> TimeInterval:
        """Build from the validated spec."""
        weekdays = {d for lo, hi in _ranges(spec.weekdays, _day_number) for d in _cyclic(lo, hi, 7)}
        months = {m for lo, hi in _ranges(spec.months, _month_number) for m in range(lo, hi + 1)}
        return cls(
            times=tuple((_minutes(t.start_time), _minutes(t.end_time)) for t in spec.times),
            weekdays=frozenset(weekdays) if spec.weekdays else None,
            days_of_month=_ranges(spec.days_of_month, int),
            months=frozenset(months) if spec.months else None,
            years=_ranges(spec.years, int),
            zone=ZoneInfo(spec.location),
        )

    def contains(self, ts: int) -> bool:
        """Whether event time `ts` (ns since the epoch) falls inside."""
        local = datetime.fromtimestamp(ts / _NS, tz=self.zone)
        if self.times:
            minute = local.hour * 60 + local.minute
            if not any(lo <= minute < hi for lo, hi in self.times):
                return False
        if self.weekdays is not None and local.weekday() not in self.weekdays:
            return False
        if self.months is not None and local.month not in self.months:
            return False
        if self.years and not any(lo <= local.year <= hi for lo, hi in self.years):
            return False
        if self.days_of_month:
            last = calendar.monthrange(local.year, local.month)[1]
            day = local.day
            if not any(_day(lo, last) <= day <= _day(hi, last) for lo, hi in self.days_of_month):
                return False
        return True


def _cyclic(lo: int, hi: int, n: int) -> list[int]:
    """``lo`` to ``hi`` inclusive, wrapping past ``n - 1`` (``saturday:monday``)."""
    return [(lo + i) % n for i in range(((hi - lo) % n) + 1)]


def _day(day: int, last: int) -> int:
    """A day of the month, counting negatives from the end (-1 is `last`)."""
    return day if day > 0 else max(1, last + 1 + day)


@dataclass(frozen=True, slots=True)
class Window:
    """A named interval, built: it holds when any of its intervals does."""

    name: str
    intervals: tuple[TimeInterval, ...]

    @classmethod
    def of(cls, named: NamedTimeInterval) -> Window:
        """Build a named interval."""
        return cls(named.name, tuple(TimeInterval.of(s) for s in named.time_intervals))

    def contains(self, ts: int) -> bool:
        """Whether event time `ts` is inside any of its intervals."""
        return any(i.contains(ts) for i in self.intervals)


def windows(named: Sequence[NamedTimeInterval]) -> dict[str, Window]:
    """The named intervals of the config, built, by name."""
    return {n.name: Window.of(n) for n in named}


def resolve(names: Sequence[str], known: Mapping[str, Window]) -> tuple[Window, ...]:
    """The windows a route names; `RulesError` for a name nobody defined."""
    missing = [n for n in names if n not in known]
    if missing:
        raise RulesError(
            f"time interval {missing[0]!r} is not defined "
            f"(time_intervals: {', '.join(sorted(known)) or 'none'})"
        )
    return tuple(known[n] for n in names)


def parse_every(text: str) -> TimeIntervalSpec:
    """The short form of ``silence add --every``: weekdays, times of day, a time zone.

    Each word is a weekday list (``mon``, ``mon,thu``, ``mon-fri``), a time range list
    (``06:00-08:00``, ``06:00-07:00,12:00-13:00``) or a time zone (``Europe/Berlin``,
    ``UTC``); leave weekdays out for every day. Raises `ValueError` naming the word.

    >>> parse_every("mon 06:00-08:00").model_dump(exclude_defaults=True)
    {'times': [{'start_time': '06:00', 'end_time': '08:00'}], 'weekdays': ['monday']}
    """
    times: list[dict[str, str]] = []
    weekdays: list[str] = []
    location = "UTC"
    words = text.split()
    if not words:
        raise ValueError("--every needs weekdays, a time range or both, e.g. 'mon 06:00-08:00'")
    for word in words:
        if word[0].isdigit():
            for part in word.split(","):
                start, sep, end = part.partition("-")
                if not sep:
                    raise ValueError(f"{part!r} is not a time range (HH:MM-HH:MM)")
                times.append({"start_time": start, "end_time": end})
        elif "/" in word or word.upper() == "UTC":
            location = word
        else:
            for part in word.split(","):
                first, _, last = part.partition("-")
                days = [_DAYS[_day_number(d)] for d in (first, last) if d]
                weekdays.append(":".join(days))
    try:
        return TimeIntervalSpec.model_validate(
            {"times": times, "weekdays": weekdays, "location": location}
        )
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def describe(spec: TimeIntervalSpec) -> str:
    """A spec in the short form of `parse_every` (for listings and health reasons).

    >>> describe(parse_every("mon-fri 06:00-08:00"))
    'mon-fri 06:00-08:00'
    """
    words = [
        ",".join("-".join(d[:3] for d in w.split(":")) for w in spec.weekdays),
        ",".join(f"{t.start_time}-{t.end_time}" for t in spec.times),
    ]
    if spec.days_of_month:
        words.append("days " + ",".join(spec.days_of_month))
    if spec.months:
        words.append("months " + ",".join(spec.months))
    if spec.years:
        words.append("years " + ",".join(spec.years))
    if spec.location != "UTC":
        words.append(spec.location)
    return " ".join(w for w in words if w) or "always"
