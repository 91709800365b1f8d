"""``meshwatch evaluate RUN.jsonl.gz --labels LABELS``: a recorded run against its ground truth.

A fleet file is a repeatable scenario: simulate it while recording (or record the demo), and
this replays the recording offline through the live code, decoding, scoring with the
configured profiles and alerting with the configured rules, then matches the alerts with
the simulator's labels: faults detected, how soon after onset, false alarms per asset-day.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from alerts.durations import format_duration
from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.settings import load
from alerts.state import AlertState
from ingest.base import Point, Reading
from ingest.decode import Decoder
from ingest.errors import RejectedMessage
from ingest.timestamps import format_rfc3339
from ingest.topic import TopicTemplate
from meshwatch.detection import Fault, Score, faults_table, score
from meshwatch.settings import Settings
from models.checkpoints import CheckpointStore
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor
from simulators.groundtruth import read_labels
from simulators.recording import read_recording

# Readings scored and judged together, as a pipeline batch would be.
_BATCH = 1000
_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class RunResult:
    """A recorded run judged: the score, readings, rejected messages, assets and span (ns)."""

    score: Score
    readings: int
    rejected: int
    assets: int
    span: int

    @property
    def false_alarms_per_asset_day(self) -> float:
        """False alarms over the asset-days the run covered."""
        days = self.assets * self.span / _DAY_NS
        return len(self.score.false_alarms) / days if days else 0.0


def evaluate_run(recording: Path, labels: Path, settings: Settings) -> RunResult:
    """Replay `recording` through decoding, scoring and alerting; match with `labels`."""
    decoder = Decoder(
        TopicTemplate.parse(settings.mqtt.topic),
        max_payload=settings.ingest.max_payload,
        # A recording is judged by its own timestamps, whenever it is evaluated.
        max_future_ns=2**62,
    )
    faults = [
        Fault(g.site, g.asset, g.fault, g.start, g.end if g.end is not None else g.start)
        for g in read_labels(labels)
    ]
    alerts: list[dict[str, Any]] = []
    readings = rejected = 0
    first = last = None
    assets: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="meshwatch-evaluate-") as tmp:
        scoring = ScoringProcessor(
            ModelRegistry(
                ProfileSelector(settings.models.profiles),
                CheckpointStore(Path(tmp) / "models.db"),
                max_models=settings.models.max_models,
                checkpoint_interval=1e9,
            )
        )
        alerting = load(settings.alerts)
        engine = AlertEngine(
            alerting.rules,
            alerting.route,
            AlertState(Path(tmp) / "alerts.db"),
            metrics=AlertMetrics(),
            reroute_settings=settings.alerts.reroute,
        )
        processor = AlertProcessor(engine)
        try:
            for batch, dropped in _batches(decoder, recording):
                rejected += dropped
                if not batch:
                    continue
                readings += len(batch)
                assets.update((r.site, r.asset) for r in batch)
                first = batch[0].ts if first is None else min(first, batch[0].ts)
                last = batch[-1].ts if last is None else max(last, batch[-1].ts)
                scores = scoring.process(batch)
                made = processor.process(batch, scores)
                alerts.extend(_alert_json(p) for p in made if p.measurement == "alert")
                processor.committed()
            alerts.extend(_alert_json(p) for p in processor.tick() if p.measurement == "alert")
        finally:
            engine.close()
            scoring.close()
    span = (last - first) if first is not None and last is not None else 0
    return RunResult(score(faults, alerts), readings, rejected, len(assets), span)


def _batches(decoder: Decoder, recording: Path) -> Iterator[tuple[list[Reading], int]]:
    batch: list[Reading] = []
    dropped = 0
    for message in read_recording(recording):
        try:
            batch.extend(decoder.decode(message.topic, message.payload, int(message.t * 1e9)))
        except RejectedMessage:
            dropped += 1
        if len(batch) >= _BATCH:
            yield batch, dropped
            batch, dropped = [], 0
    yield batch, dropped


def _alert_json(point: Point) -> dict[str, Any]:
    """An ``alert`` record as the alert message's fields that matching needs."""
    return {
        "id": point.fields["id"],
        "site": point.tags["site"],
        "asset": point.tags["asset"],
        "rule": point.tags["rule"],
        "state": point.fields["state"],
        "started_at": format_rfc3339(point.ts),
    }


def report(result: RunResult, console: Console, *, as_json: bool) -> None:
    """Print the faults table and the totals (or one JSON object)."""
    found = result.score
    if as_json:
        console.print_json(
            orjson.dumps(
                {
                    "faults": [
                        {
                            "site": f.fault.site,
                            "asset": f.fault.asset,
                            "fault": f.fault.fault,
                            "detected": f.detected,
                            "rule": f.rule,
                            "delay_s": None if f.delay is None else f.delay / 1e9,
                        }
                        for f in found.findings
                    ],
                    "detected": found.detected,
                    "false_alarms": len(found.false_alarms),
                    "false_alarms_per_asset_day": result.false_alarms_per_asset_day,
                    "readings": result.readings,
                    "rejected": result.rejected,
                }
            ).decode()
        )
        return
    console.print(faults_table(found.findings))
    console.print(
        f"faults detected: {found.detected} of {len(found.findings)}; false alarms: "
        f"{len(found.false_alarms)} ({result.false_alarms_per_asset_day:.2f} per asset-day over "
        f"{result.assets} assets and {format_duration(result.span / 1e9)}); "
        f"{result.readings:,} readings, {result.rejected:,} messages rejected"
    )
