"""How well the alerts caught a simulated run's faults (the demo's summary, ``evaluate``).

Pure functions over the simulator's ground truth and the alert messages the pipeline sent
(``meshwatch/alerts/{site}/{asset}``), in event time: a fault is detected by the first alert
on its asset that fired between its start and a grace period after its end; its delay is
that alert's ``started_at`` minus the fault's start. An alert on an asset outside every
fault of that asset (plus the grace) is a false alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from alerts.durations import format_duration
from ingest.timestamps import format_rfc3339, parse_rfc3339

#: An alert this long after a fault ended still counts as its detection: a deadman fires
#: ``for`` after the silence began, and hysteresis keeps a fault's alert a while.
GRACE_NS = 10 * 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault, from the simulator's labels file."""

    site: str
    asset: str
    fault: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Finding:
    """A fault and how it was caught: the first alert's rule, and its delay (ns), or None."""

    fault: Fault
    rule: str | None
    delay: int | None

    @property
    def detected(self) -> bool:
        """Whether any alert named the faulty asset in time."""
        return self.rule is not None


@dataclass(frozen=True, slots=True)
class Score:
    """The demo's verdict: one finding per fault, and the false alarms."""

    findings: tuple[Finding, ...]
    false_alarms: tuple[Mapping[str, Any], ...]

    @property
    def detected(self) -> int:
        """How many faults were caught."""
        return sum(f.detected for f in self.findings)


def score(faults: Sequence[Fault], alerts: Iterable[Mapping[str, Any]]) -> Score:
    """Match firing alerts to faults.

    Examples
    --------
    >>> f = Fault("lyon", "cnc-2", "bearing_wear", start=100, end=200)
    >>> hit = {"state": "firing", "site": "lyon", "asset": "cnc-2", "rule": "anomaly",
    ...        "started_at": "1970-01-01T00:00:00.000000150Z"}
    >>> noise = {**hit, "asset": "cnc-1"}
    >>> s = score([f], [hit, noise])
    >>> s.findings[0].delay, len(s.false_alarms)
    (50, 1)
    """
    firsts: dict[str, Mapping[str, Any]] = {}
    for a in alerts:  # a repeat carries the id of its firing: the first message is the firing
        if a.get("state") == "firing":
            firsts.setdefault(str(a.get("id", len(firsts))), a)
    findings = []
    for fault in faults:
        caught = sorted(
            (parse_rfc3339(a["started_at"]), str(a["rule"]))
            for a in firsts.values()
            if _covers(fault, a)
        )
        at, rule = caught[0] if caught else (None, None)
        findings.append(Finding(fault, rule, None if at is None else at - fault.start))
    false_alarms = tuple(a for a in firsts.values() if not any(_covers(f, a) for f in faults))
    return Score(tuple(findings), false_alarms)


def _covers(fault: Fault, alert: Mapping[str, Any]) -> bool:
    """Whether the alert names the fault's asset (a site-wide alert names them all) in time."""
    if alert.get("site") != fault.site or alert.get("asset") not in (fault.asset, "*"):
        return False
    return fault.start <= parse_rfc3339(alert["started_at"]) <= fault.end + GRACE_NS


def faults_table(findings: Sequence[Finding]) -> Table:
    """One row per injected fault: detected or not, by which rule, how long after onset."""
    table = Table(title="injected faults")
    for column in ("site", "asset", "fault", "onset", "detected", "by rule", "after onset"):
        table.add_column(column)
    for f in findings:
        table.add_row(
            f.fault.site,
            f.fault.asset,
            f.fault.fault,
            format_rfc3339(f.fault.start)[:19],
            "yes" if f.detected else "[red]no[/red]",
            f.rule or "-",
            "-" if f.delay is None else format_duration(f.delay / 1e9),
        )
    return table
