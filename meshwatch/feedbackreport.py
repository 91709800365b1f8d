"""``meshwatch evaluate --feedback``: the alerts as maintenance staff judged them.

Every verdict given with ``meshwatch feedback`` is a label in the data dir's ``alerts.db``
(`alerts.labels`). This reads them and reports, per rule and per asset, how many alerts were
confirmed faults and how many were marked normal (false alarms), and the precision the
people who answered them saw: confirmed faults over labelled alerts. A rule with a low
precision is the one to tune; an asset with many false alarms, the one whose model to look
at (or to reset after maintenance). Alerts nobody gave a verdict on are not counted: the
figures are those of the labelled alerts only.

`ground_truth` turns the confirmed faults into the simulator's ground-truth format, so that
``meshwatch evaluate RUN.jsonl.gz --labels FILE`` judges a recorded run (new settings, a new
detector) against what staff confirmed: did it still catch each confirmed fault, and how
soon? There, every alert outside a confirmed fault counts as a false alarm, including the
alerts nobody labelled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from alerts.labels import Label, Verdict
from simulators.groundtruth import GroundTruth, write_labels


@dataclass(frozen=True, slots=True)
class Tally:
    """Labelled alerts of one rule or asset: confirmed faults and false alarms.

    Examples
    --------
    >>> Tally(3, 1).precision, Tally(0, 0).precision
    (0.75, None)
    """

    fault: int = 0
    normal: int = 0

    @property
    def labelled(self) -> int:
        """Alerts with a verdict."""
        return self.fault + self.normal

    @property
    def precision(self) -> float | None:
        """Confirmed faults over labelled alerts (None without any)."""
        return self.fault / self.labelled if self.labelled else None

    def to_json(self) -> dict[str, Any]:
        """The form ``--json`` prints."""
        return {
            "labelled": self.labelled,
            "fault": self.fault,
            "normal": self.normal,
            "precision": self.precision,
        }


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """The labels tallied per rule, per asset (``site/asset``) and overall."""

    by_rule: dict[str, Tally]
    by_asset: dict[str, Tally]
    total: Tally


def feedback_report(labels: Sequence[Label]) -> FeedbackReport:
    """Tally the latest verdict of each labelled alert.

    Examples
    --------
    >>> def label(alert_id, verdict, asset):
    ...     return Label(alert_id, verdict, "ana", "", 0.0, "anomaly", "warning", "lyon",
    ...                  asset, None, 0, 1)
    >>> report = feedback_report([label("a1", Verdict.FAULT, "cnc-1"),
    ...                           label("a2", Verdict.NORMAL, "cnc-1"),
    ...                           label("a3", Verdict.NORMAL, "cnc-2")])
    >>> report.by_rule["anomaly"], report.by_asset["lyon/cnc-2"].precision
    (Tally(fault=1, normal=2), 0.0)
    """
    counts: dict[str, Counter[Verdict]] = {}
    assets: dict[str, Counter[Verdict]] = {}
    for label in labels:
        counts.setdefault(label.rule, Counter())[label.verdict] += 1
        assets.setdefault(f"{label.site}/{label.asset}", Counter())[label.verdict] += 1

    def tally(c: Counter[Verdict]) -> Tally:
        return Tally(c[Verdict.FAULT], c[Verdict.NORMAL])

    total: Counter[Verdict] = Counter(label.verdict for label in labels)
    return FeedbackReport(
        {k: tally(c) for k, c in sorted(counts.items())},
        {k: tally(c) for k, c in sorted(assets.items())},
        tally(total),
    )


def report_json(report: FeedbackReport) -> dict[str, Any]:
    """The report as one JSON object."""
    return {
        "total": report.total.to_json(),
        "by_rule": {k: t.to_json() for k, t in report.by_rule.items()},
        "by_asset": {k: t.to_json() for k, t in report.by_asset.items()},
    }


def report_tables(report: FeedbackReport) -> list[Table]:
    """One table per rule, one per asset (most false alarms first), with a total row each."""
    rules = _table("verdicts of maintenance staff, by rule", "rule", report.by_rule, report.total)
    assets = _table(
        "by asset, most false alarms first",
        "asset",
        dict(sorted(report.by_asset.items(), key=lambda kv: (-kv[1].normal, kv[0]))),
        report.total,
    )
    return [rules, assets]


def _table(title: str, key: str, rows: dict[str, Tally], total: Tally) -> Table:
    table = Table(title=title)
    for column in (key, "labelled", "confirmed fault", "marked normal", "precision"):
        table.add_column(column, justify="left" if column == key else "right")
    for name, tally in [*rows.items(), ("all", total)]:
        table.add_row(
            name,
            str(tally.labelled),
            str(tally.fault),
            str(tally.normal),
            "-" if tally.precision is None else f"{tally.precision:.0%}",
            end_section=name == next(reversed(rows), None),
        )
    return table


def ground_truth(labels: Sequence[Label], path: Path, now_ns: int) -> int:
    """Write the confirmed faults as a simulator labels file; return how many.

    Each is ``{"site", "asset", "fault": "confirmed:<rule>", "start", "end"}`` over its
    alert's episode; one still firing ends at `now_ns`.
    """
    faults = [
        GroundTruth(label.site, label.asset, f"confirmed:{label.rule}", label.start, label.end)
        for label in labels
        if label.verdict is Verdict.FAULT
    ]
    write_labels(path, faults, now_ns)
    return len(faults)
