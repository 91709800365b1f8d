"""``meshwatch evaluate RUN.jsonl.gz --labels LABELS``: a recorded run against its ground truth.

A fleet file is a repeatable scenario: simulate it while recording (or record the demo), and
this replays the recording offline through the live code, decoding, then scoring with the
configured profiles and alerting with the configured rules (`meshwatch.offline`), and
matches the alerts with the simulator's labels: the alarm report (`meshwatch.alarmreport`):
faults detected and how soon after onset, false alarms per machine-hour, alarms per 10
minutes against EEMUA 191 and ISA-18.2, chattering and stale alarms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from alerts.detection import Fault, Finding
from common.durations import format_duration
from common.timestamps import format_rfc3339
from ingest.base import Reading
from ingest.decode import Decoder
from ingest.errors import RejectedMessage
from ingest.topic import TopicTemplate
from meshwatch.alarmreport import AlarmReport, alarm_report, report_json, report_table
from meshwatch.offline import OfflinePipeline
from meshwatch.settings import Settings
from simulators.groundtruth import read_labels
from simulators.recording import read_recording


@dataclass(frozen=True, slots=True)
class RunResult:
    """A recorded run judged: the alarm report, readings and rejected messages."""

    report: AlarmReport
    readings: int
    rejected: int

    @property
    def false_alarms_per_asset_day(self) -> float:
        """False alarms per asset-day (kept for the scripts that read it: 24 x per hour)."""
        return 24 * self.report.false_alarms_per_machine_hour


def read_faults(labels: Path) -> list[Fault]:
    """The faults of a simulator's labels file (`SimulatorError` names a bad line)."""
    return [
        Fault(g.site, g.asset, g.fault, g.start, g.end if g.end is not None else g.start)
        for g in read_labels(labels)
    ]


def evaluate_run(recording: Path, labels: Path, settings: Settings) -> RunResult:
    """Replay `recording` through decoding, scoring and alerting; match with `labels`."""
    decoder = Decoder(
        TopicTemplate.parse(settings.mqtt.topic),
        max_payload=settings.ingest.max_payload,
        # A recording is judged by its own timestamps, whenever it is evaluated.
        max_future_ns=2**62,
    )
    faults = read_faults(labels)
    rejected = 0
    with OfflinePipeline(settings) as pipeline:
        for readings, dropped in _decoded(decoder, recording):
            rejected += dropped
            pipeline.feed(readings)
        judged = pipeline.finish()
    start = judged.first if judged.first is not None else 0
    end = judged.last if judged.last is not None else start
    report = alarm_report(faults, judged.alerts, machines=len(judged.assets), start=start, end=end)
    return RunResult(report, judged.readings, rejected)


def _decoded(decoder: Decoder, recording: Path) -> Iterator[tuple[list[Reading], int]]:
    """Each message's readings, and 1 for a message the decoder rejected."""
    for message in read_recording(recording):
        try:
            yield decoder.decode(message.topic, message.payload, int(message.t * 1e9)), 0
        except RejectedMessage:
            yield [], 1


def report(result: RunResult, console: Console, *, as_json: bool) -> None:
    """Print the faults table, the summary line and the alarm report (or one JSON object)."""
    found = result.report.score
    if as_json:
        console.print_json(
            orjson.dumps(
                {
                    "faults": [f.to_json() for f in found.findings],
                    "detected": found.detected,
                    "false_alarms": len(found.false_alarms),
                    "false_alarms_per_asset_day": result.false_alarms_per_asset_day,
                    "readings": result.readings,
                    "rejected": result.rejected,
                    "alarm_report": report_json(result.report),
                }
            ).decode()
        )
        return
    console.print(faults_table(found.findings))
    console.print(found.line(), highlight=False)
    console.print(report_table(result.report))
    console.print(
        f"{result.readings:,} readings from {result.report.machines:,} assets, "
        f"{result.rejected:,} messages rejected"
    )


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
