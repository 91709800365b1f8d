"""The alarm report: a run's alerts as the people who answer them would live with them.

Pure functions over a run's alert episodes (`alerts.detection.episodes`) and the
simulator's ground truth, in event time, held against the alarm-management figures:

- **False alarms per machine-hour**: false-alarm episodes over machines x hours of the run.
- **Alarms per 10 minutes for the whole fleet**, as if one operator answered them all: the
  mean over the run and the worst 10-minute window (fixed windows from the run's start).
  EEMUA 191 puts what one operator can handle in steady operation at fewer than 1 alarm per
  10 minutes; ISA-18.2 calls about 150 a day "very likely acceptable" and 300 "maximum
  manageable", and a 10-minute window with more than 10 alarms a flood.
- **Chattering alarms**: one rule on one asset firing 3 or more times within a minute
  (each firing after the first means it cleared in between), ISA-18.2's rule of thumb.
- **Stale alarms**: firing for more than 24 hours (until it cleared, or until the run ended).
- **Faults caught**, and their delay after onset (`alerts.detection.score`).

A run shorter than 24 hours cannot show a stale alarm; the episodes still firing at its end
are counted beside it.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from alerts.detection import Episode, Fault, Score, score
from alerts.flapping import CHATTER_FIRINGS, CHATTER_WINDOW_NS
from alerts.metrics import STALE_NS
from common.durations import format_duration
from common.timestamps import format_rfc3339

_NS = 1_000_000_000
MINUTE_NS = 60 * _NS
TEN_MINUTES_NS = 10 * MINUTE_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
#: EEMUA 191: fewer than 1 alarm per 10 minutes per operator in steady operation.
EEMUA_PER_10_MIN = 1.0
#: ISA-18.2: about 150 alarms a day per operator "very likely acceptable" ...
ISA_ACCEPTABLE_PER_DAY = 150.0
#: ... and about 300 "maximum manageable".
ISA_MANAGEABLE_PER_DAY = 300.0
#: ISA-18.2: more than 10 alarms in 10 minutes is an alarm flood.
FLOOD_PER_10_MIN = 10
# Chattering (ISA-18.2: 3 firings within a minute) and stale alarms (standing for more than
# 24 h) are judged by the router's own figures, `alerts.flapping.CHATTER_FIRINGS` and
# `alerts.metrics.STALE_NS`: the report agrees with ``meshwatch_alerts_chattering_total`` and
# ``meshwatch_alerts_stale``.


@dataclass(frozen=True, slots=True)
class Rate:
    """Alarms per 10 minutes over a run.

    ``mean`` is the count over the run's length in 10-minute units; ``worst`` the most in
    one of the fixed 10-minute windows from the start, the first such window beginning at
    ``worst_at``; ``flooded`` the share of windows with more than `FLOOD_PER_10_MIN`.
    """

    count: int
    mean: float
    worst: int
    worst_at: int
    flooded: float

    @property
    def per_day(self) -> float:
        """The mean as alarms a day (144 ten-minute windows)."""
        return self.mean * 144


def ten_minute_rate(times: Iterable[int], start: int, end: int) -> Rate:
    """The rate of alarms that fired at ``times`` (ns) in a run from ``start`` to ``end``.

    Examples
    --------
    >>> m = MINUTE_NS
    >>> r = ten_minute_rate([1 * m, 2 * m, 12 * m], start=0, end=30 * m)
    >>> r.count, r.mean, r.worst, r.worst_at // m, r.flooded
    (3, 1.0, 2, 0, 0.0)
    """
    span = max(end - start, 1)
    windows = [0] * max(1, math.ceil(span / TEN_MINUTES_NS))
    count = 0
    for t in times:
        index = min(max(t - start, 0) // TEN_MINUTES_NS, len(windows) - 1)
        windows[index] += 1
        count += 1
    worst = max(windows)
    return Rate(
        count=count,
        mean=count * TEN_MINUTES_NS / span,
        worst=worst,
        worst_at=start + windows.index(worst) * TEN_MINUTES_NS,
        flooded=sum(w > FLOOD_PER_10_MIN for w in windows) / len(windows),
    )


@dataclass(frozen=True, slots=True)
class Chatter:
    """A chattering alarm: one rule on one asset, its firings, and the most in one minute."""

    site: str
    asset: str
    rule: str
    firings: int
    most_in_a_minute: int
    at: int


def chattering(
    found: Iterable[Episode], *, times: int = CHATTER_FIRINGS, window: int = CHATTER_WINDOW_NS
) -> list[Chatter]:
    """The alarms (rule on asset) that fired ``times`` or more times within ``window`` ns.

    "Within a minute": the last of them less than ``window`` after the first.

    Examples
    --------
    >>> s = 1_000_000_000
    >>> flaps = [Episode(str(i), "lyon", "cnc-1", "anomaly", t * s, t * s + s)
    ...          for i, t in enumerate([0, 20, 40, 200])]
    >>> calm = [Episode("x", "lyon", "cnc-2", "anomaly", 0, s), Episode("y", "lyon", "cnc-2",
    ...         "anomaly", 60 * s, 61 * s), Episode("z", "lyon", "cnc-2", "anomaly", 120 * s)]
    >>> [(c.asset, c.firings, c.most_in_a_minute) for c in chattering(flaps + calm)]
    [('cnc-1', 4, 3)]
    """
    fired: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for e in found:
        fired[e.site, e.asset, e.rule].append(e.fired)
    out = []
    for (site, asset, rule), stamps in fired.items():
        stamps.sort()
        most, at, first = 0, 0, 0
        for last, t in enumerate(stamps):
            while t - stamps[first] >= window:
                first += 1
            if last - first + 1 > most:
                most, at = last - first + 1, stamps[first]
        if most >= times:
            out.append(Chatter(site, asset, rule, len(stamps), most, at))
    out.sort(key=lambda c: (-c.most_in_a_minute, c.at, c.site, c.asset, c.rule))
    return out


def stale(found: Iterable[Episode], end: int, *, after: int = STALE_NS) -> list[Episode]:
    """The episodes that fired for more than ``after`` ns (until cleared, or until ``end``).

    Examples
    --------
    >>> h = 3_600_000_000_000
    >>> old = Episode("1", "lyon", "cnc-1", "anomaly", fired=0)
    >>> cleared = Episode("2", "lyon", "cnc-2", "anomaly", fired=0, cleared=2 * h)
    >>> [e.id for e in stale([old, cleared], end=25 * h)]
    ['1']
    """
    return [e for e in found if (end if e.cleared is None else e.cleared) - e.fired > after]


def per_machine_hour(count: int, machines: int, span: int) -> float:
    """``count`` over the machine-hours of ``machines`` for ``span`` ns (0 when there are none).

    Examples
    --------
    >>> per_machine_hour(40, 12, 2 * HOUR_NS)
    1.6666666666666667
    """
    hours = machines * span / HOUR_NS
    return count / hours if hours else 0.0


@dataclass(frozen=True, slots=True)
class AlarmReport:
    """A run's alarm report: the score, the machines and the span, the rates, the defects."""

    score: Score
    machines: int
    start: int
    end: int
    alarms: Rate
    false_alarms: Rate
    chattering: tuple[Chatter, ...]
    stale: tuple[Episode, ...]
    stale_false: tuple[Episode, ...]
    open_false: tuple[Episode, ...]

    @property
    def machine_hours(self) -> float:
        """Machines x hours of the run."""
        return self.machines * (self.end - self.start) / HOUR_NS

    @property
    def false_alarms_per_machine_hour(self) -> float:
        """False-alarm episodes per machine-hour."""
        return per_machine_hour(len(self.score.false_alarms), self.machines, self.end - self.start)

    @property
    def delays(self) -> list[int]:
        """Each detected fault's delay after onset (ns), in fault order."""
        return [f.delay for f in self.score.findings if f.delay is not None]


def alarm_report(
    faults: Sequence[Fault],
    alerts: Iterable[Mapping[str, Any]],
    *,
    machines: int,
    start: int,
    end: int,
) -> AlarmReport:
    """The report of a run of ``machines`` from ``start`` to ``end`` (ns) with these alerts.

    Examples
    --------
    >>> m = MINUTE_NS
    >>> fault = Fault("lyon", "cnc-1", "overheating", start=30 * m, end=60 * m)
    >>> def alert(i, asset, t):
    ...     return {"id": str(i), "site": "lyon", "asset": asset, "rule": "anomaly",
    ...             "started_at": format_rfc3339(t), "resolved_at": None}
    >>> r = alarm_report([fault], [alert(1, "cnc-2", 5 * m), alert(2, "cnc-1", 32 * m)],
    ...                  machines=2, start=0, end=60 * m)
    >>> r.score.line(), r.false_alarms_per_machine_hour, r.alarms.mean, len(r.open_false)
    ('faults detected: 1 of 1; false alarms: 1', 0.5, 0.3333333333333333, 1)
    """
    verdict = score(faults, alerts)
    false = set(verdict.false_alarms)
    old = stale(verdict.episodes, end)
    return AlarmReport(
        score=verdict,
        machines=machines,
        start=start,
        end=end,
        alarms=ten_minute_rate((e.fired for e in verdict.episodes), start, end),
        false_alarms=ten_minute_rate((e.fired for e in verdict.false_alarms), start, end),
        chattering=tuple(chattering(verdict.episodes)),
        stale=tuple(old),
        stale_false=tuple(e for e in old if e in false),
        open_false=tuple(e for e in verdict.false_alarms if e.cleared is None),
    )


def _eemua(rate: Rate) -> str:
    return "[green]within[/]" if rate.mean < EEMUA_PER_10_MIN else "[red]over[/]"


def _isa(rate: Rate) -> str:
    if rate.per_day <= ISA_ACCEPTABLE_PER_DAY:
        return "[green]very likely acceptable[/]"
    if rate.per_day <= ISA_MANAGEABLE_PER_DAY:
        return "[yellow]manageable[/]"
    return "[red]over the maximum[/]"


def _clock(ns: int) -> str:
    return format_rfc3339(ns)[11:16]


def report_table(report: AlarmReport) -> Table:
    """The report as one table: measure, value, reference, verdict."""
    hours = (report.end - report.start) / HOUR_NS
    table = Table(
        title=f"alarm report: {report.machines:,} machines, {format_duration(hours * 3600)}, "
        f"{report.machine_hours:,.1f} machine-hours; the fleet as one operator's"
    )
    for column in ("measure", "value", "reference", "verdict"):
        table.add_column(column)
    found = report.score
    delays = report.delays
    table.add_row("faults caught", f"{found.detected} of {len(found.findings)}", "", "")
    if delays:
        table.add_row(
            "delay after onset",
            f"median {format_duration(statistics.median(delays) / _NS)}, "
            f"worst {format_duration(max(delays) / _NS)}",
            "",
            "",
        )
    table.add_row(
        "false alarms",
        f"{len(found.false_alarms):,}: {report.false_alarms_per_machine_hour:.3f} per machine-hour",
        "",
        "",
    )
    for what, rate in (("alarms", report.alarms), ("false alarms", report.false_alarms)):
        table.add_row(
            f"{what} per 10 min",
            f"mean {rate.mean:.2f}, worst {rate.worst} (from {_clock(rate.worst_at)})",
            f"EEMUA 191: < {EEMUA_PER_10_MIN:g}",
            _eemua(rate),
        )
        table.add_row(
            f"{what} per day",
            f"{rate.per_day:,.0f}",
            f"ISA-18.2: ~{ISA_ACCEPTABLE_PER_DAY:.0f} acceptable, "
            f"~{ISA_MANAGEABLE_PER_DAY:.0f} max",
            _isa(rate),
        )
    table.add_row(
        f"10-min windows over {FLOOD_PER_10_MIN} alarms",
        f"{report.alarms.flooded:.1%}",
        "ISA-18.2: < 1 % (floods)",
        "[green]within[/]" if report.alarms.flooded < 0.01 else "[red]over[/]",
    )
    worst = report.chattering[0] if report.chattering else None
    table.add_row(
        f"chattering ({CHATTER_FIRINGS}+ in a minute)",
        f"{len(report.chattering)}"
        + (
            f", worst {worst.site}/{worst.asset} {worst.rule}: {worst.most_in_a_minute} "
            f"in a minute, {worst.firings} in all"
            if worst
            else ""
        ),
        "none",
        "[green]none[/]" if worst is None else "[red]defect[/]",
    )
    table.add_row(
        "stale (firing > 24 h)",
        f"{len(report.stale)}, of them false alarms {len(report.stale_false)}"
        + (" (needs a run over 24 h)" if hours <= 24 else ""),
        "none",
        "[green]none[/]" if not report.stale else "[red]defect[/]",
    )
    oldest = min((e.fired for e in report.open_false), default=report.end)
    table.add_row(
        "false alarms firing at the end",
        f"{len(report.open_false)}"
        + (
            f", oldest for {format_duration((report.end - oldest) / _NS)}"
            if oldest < report.end
            else ""
        ),
        "",
        "",
    )
    return table


def report_json(report: AlarmReport) -> dict[str, Any]:
    """The report's figures as plain JSON values (times in RFC 3339, durations in s)."""

    def rate(r: Rate) -> dict[str, Any]:
        return {
            "count": r.count,
            "mean_per_10_min": r.mean,
            "worst_per_10_min": r.worst,
            "worst_window_start": format_rfc3339(r.worst_at),
            "per_day": r.per_day,
            "flooded_windows": r.flooded,
        }

    delays = report.delays
    return {
        "machines": report.machines,
        "start": format_rfc3339(report.start),
        "end": format_rfc3339(report.end),
        "machine_hours": report.machine_hours,
        "detected": report.score.detected,
        "faults": len(report.score.findings),
        "delay_median_s": statistics.median(delays) / _NS if delays else None,
        "delay_max_s": max(delays) / _NS if delays else None,
        "false_alarms": len(report.score.false_alarms),
        "false_alarms_per_machine_hour": report.false_alarms_per_machine_hour,
        "alarms": rate(report.alarms),
        "false_alarm_rate": rate(report.false_alarms),
        "eemua_per_10_min": EEMUA_PER_10_MIN,
        "isa_per_day": {"acceptable": ISA_ACCEPTABLE_PER_DAY, "manageable": ISA_MANAGEABLE_PER_DAY},
        "chattering": [
            {
                "site": c.site,
                "asset": c.asset,
                "rule": c.rule,
                "firings": c.firings,
                "most_in_a_minute": c.most_in_a_minute,
                "at": format_rfc3339(c.at),
            }
            for c in report.chattering
        ],
        "stale": len(report.stale),
        "stale_false_alarms": len(report.stale_false),
        "false_alarms_firing_at_end": len(report.open_false),
    }
