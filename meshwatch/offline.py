"""The pipeline's scoring and alerting, offline: readings in, alert messages out.

What ``meshwatch run`` does to each batch of decoded readings, without a broker or a store:
the per-asset models score and learn (`ScoringProcessor` over a `ModelRegistry` with the
configured profiles), then the alert rules judge (`AlertProcessor` over an `AlertEngine`
with the configured rules and routes), batch by batch in event time, and the alert state is
committed after each batch as the pipeline commits it. ``meshwatch evaluate RUN --labels``
feeds it a recording's readings and the alarm benchmark (``bench/alarms_bench.py``) a
simulated fleet's; both judge what comes out with `meshwatch.alarmreport`.

The alerts' wall clock (silences, the silent-fleet clock, lazy saves) is the stream's newest
event time, so the verdict depends on the readings only, not on how fast they are judged.
Models and alert state live in a temporary directory, removed on close. The alerts come out
in the form of the alert messages (`alerts.base.Alert.to_json`'s fields that judging needs),
one when an alert fires, changes level and resolves, made from the engine's ``alert`` records:
every episode counts, also one the receivers would not hear of because an inhibition muted
it (a critical alert of the same asset, its site offline). The demo, which judges the alert
messages on the broker, does not see those, so on the same run it can count fewer alarms.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.settings import load
from alerts.state import AlertState
from common.closing import Closing
from common.timestamps import format_rfc3339
from ingest.base import Point, Reading
from meshwatch.settings import Settings
from models.checkpoints import CheckpointStore
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor

#: Readings scored and judged together, as a pipeline batch of the ingest defaults would be.
BATCH = 1000


@dataclass(slots=True)
class Judged:
    """What a stream of readings caused: the alert messages, and what the stream held.

    ``first`` and ``last`` are the earliest and latest reading times (ns), None without one.
    """

    alerts: list[dict[str, Any]] = field(default_factory=list)
    readings: int = 0
    assets: set[tuple[str, str]] = field(default_factory=set)
    first: int | None = None
    last: int | None = None

    @property
    def span(self) -> int:
        """Nanoseconds from the first reading to the last."""
        return 0 if self.first is None or self.last is None else self.last - self.first

    def merge(self, other: Judged) -> None:
        """Add another part of the same run (other sites, judged apart)."""
        self.alerts.extend(other.alerts)
        self.readings += other.readings
        self.assets |= other.assets
        firsts = [t for t in (self.first, other.first) if t is not None]
        lasts = [t for t in (self.last, other.last) if t is not None]
        self.first = min(firsts, default=None)
        self.last = max(lasts, default=None)


class OfflinePipeline(Closing):
    """Scoring and alerting of ``meshwatch run``, fed readings in event-time order.

    Parameters
    ----------
    settings
        The models' profiles, the alert rules and routes (``models``, ``alerts``).
    batch
        Readings per batch.
    workdir
        Where models and alert state are kept (default: a temporary dir, removed on close).

    Examples
    --------
    >>> readings = [Reading("lyon", "cnc-1", None, t * 1_000_000_000, {"v": 1.0})
    ...             for t in range(1, 11)]
    >>> with OfflinePipeline(Settings()) as pipeline:
    ...     pipeline.feed(readings)
    ...     judged = pipeline.finish()
    >>> judged.readings, len(judged.assets), judged.span, judged.alerts
    (10, 1, 9000000000, [])
    """

    def __init__(
        self, settings: Settings, *, batch: int = BATCH, workdir: Path | None = None
    ) -> None:
        self._own = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="meshwatch-offline-"))
        self.workdir = workdir
        self.batch = batch
        self.judged = Judged()
        self._pending: list[Reading] = []
        self._fired: dict[str, str] = {}
        self._closed = False
        self.scoring = ScoringProcessor(
            ModelRegistry(
                ProfileSelector(settings.models.profiles),
                CheckpointStore(self.workdir / "models.db"),
                max_models=settings.models.max_models,
                # Saved at the end only: a checkpoint's wall-clock schedule means nothing here.
                checkpoint_interval=1e9,
            )
        )
        alerting = load(settings.alerts)
        self.engine = AlertEngine(
            alerting.rules,
            alerting.route,
            AlertState(self.workdir / "alerts.db"),
            metrics=AlertMetrics(),
            reroute_settings=settings.alerts.reroute,
            wall=self._stream_seconds,
        )
        self.processor = AlertProcessor(self.engine)

    def feed(self, readings: Iterable[Reading]) -> None:
        """Judge these readings (the next in event time), a full batch at a time."""
        pending = self._pending
        pending.extend(readings)
        while len(pending) >= self.batch:
            self._process(pending[: self.batch])
            del pending[: self.batch]

    def finish(self) -> Judged:
        """Judge what is left, let time pass once more (silent assets), close; the result."""
        if self._pending:
            self._process(self._pending)
            self._pending = []
        self._keep(self.processor.tick())
        self.processor.committed()
        self.close()
        return self.judged

    def close(self) -> None:
        """Close the models and the alert state; remove the temporary dir."""
        if self._closed:
            return
        self._closed = True
        try:
            self.processor.close()
            self.scoring.close()
        finally:
            if self._own:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _stream_seconds(self) -> float:
        """The alerts' wall clock: the stream's own newest time, as if it were live.

        However fast or slowly the stream is judged, what the alerts decide depends on its
        event times only: a pause of the process is not a silence of the fleet.
        """
        last = self.judged.last
        return 0.0 if last is None else last / 1e9

    def _process(self, batch: list[Reading]) -> None:
        judged = self.judged
        judged.readings += len(batch)
        judged.assets.update((r.site, r.asset) for r in batch)
        first, last = min(r.ts for r in batch), max(r.ts for r in batch)
        judged.first = first if judged.first is None else min(judged.first, first)
        judged.last = last if judged.last is None else max(judged.last, last)
        scores = self.scoring.process(batch)
        self._keep(self.processor.process(batch, scores))
        self.processor.committed()

    def _keep(self, points: list[Point]) -> None:
        """The ``alert`` records as the alert messages they become."""
        for p in points:
            if p.measurement != "alert":
                continue
            alert_id = str(p.fields["id"])
            state = str(p.fields["state"])
            at = format_rfc3339(p.ts)
            # A record carries the time of its change; a message, when the alert fired. A
            # change of level is the message of a firing alert at its new severity.
            if state == "firing":
                self._fired[alert_id] = started = at
            elif state == "resolved":
                started = self._fired.pop(alert_id, at)
            else:
                state, started = "firing", self._fired.get(alert_id, at)
            self.judged.alerts.append(
                {
                    "id": alert_id,
                    "site": p.tags["site"],
                    "asset": p.tags["asset"],
                    "rule": p.tags["rule"],
                    "severity": str(p.tags["severity"]),
                    "state": state,
                    "started_at": started,
                    "resolved_at": at if state == "resolved" else None,
                }
            )
