"""One part of the fleet judged in a process of its own, telling the parent how far it got.

`judge` simulates the part's sites one simulated second at a time and feeds the readings
to `meshwatch.offline.OfflinePipeline`; `run` is what a worker process runs: `judge`, with
its progress and its result (or its traceback) put on the parent's queue.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from meshwatch.offline import Judged, OfflinePipeline
from meshwatch.settings import load_settings
from simulators.groundtruth import GroundTruth
from simulators.simulation import Simulation

from .fleet import NS, assets, load, next_readings, subfleet

#: Simulated seconds between two progress messages (a minute of 1,000 assets: ~3 s of work).
PROGRESS_EVERY_S = 60


@dataclass(frozen=True, slots=True)
class Part:
    """What one worker judges: these sites of the fleet, from ``start`` to ``end`` (ns).

    ``config`` is a meshwatch settings file (None: the defaults); ``workdir`` keeps the
    models and alert state (None: a temporary dir).
    """

    index: int
    fleet: str
    sites: tuple[str, ...]
    start: int
    end: int
    config: Path | None = None
    workdir: Path | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a part got: simulated ns done, readings and alert messages so far."""

    index: int
    done: int
    readings: int
    alerts: int


@dataclass(slots=True)
class PartResult:
    """A judged part: the alert messages and counts, its ground truth, assets and times (s).

    ``generate_s`` is the share of ``wall_s`` spent simulating the readings.
    """

    index: int
    judged: Judged
    labels: list[GroundTruth]
    assets: int
    wall_s: float
    cpu_s: float
    generate_s: float


class Queue(Protocol):
    """The parent's queue (`multiprocessing.Queue`)."""

    def put(self, obj: Any) -> None:
        """Send one message to the parent."""


def judge(part: Part, progress: Callable[[Progress], None] | None = None) -> PartResult:
    """Simulate and judge the part; call ``progress`` every `PROGRESS_EVERY_S` simulated s."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fleet = subfleet(load(part.fleet), part.sites)
    settings = load_settings(part.config)
    workdir = None
    if part.workdir is not None:
        workdir = part.workdir / f"part-{part.index}"
        workdir.mkdir(parents=True, exist_ok=True)
    sim = Simulation(fleet, part.start)
    generating = 0.0
    with OfflinePipeline(settings, workdir=workdir) as pipeline:
        t = part.start
        step = 0
        while t < part.end:
            t = min(t + NS, part.end)
            g0 = time.perf_counter()
            readings = next_readings(sim, t)
            generating += time.perf_counter() - g0
            pipeline.feed(readings)
            step += 1
            if progress is not None and step % PROGRESS_EVERY_S == 0:
                judged = pipeline.judged
                progress(Progress(part.index, t - part.start, judged.readings, len(judged.alerts)))
        judged = pipeline.finish()
    if progress is not None:
        progress(Progress(part.index, part.end - part.start, judged.readings, len(judged.alerts)))
    return PartResult(
        part.index,
        judged,
        sim.labels,
        assets(fleet),
        time.perf_counter() - wall0,
        time.process_time() - cpu0,
        generating,
    )


def run(part: Part, queue: Queue) -> None:
    """A worker process: judge the part; put progress, then ``("done", result)`` or an error."""
    try:
        result = judge(part, lambda p: queue.put(("progress", p)))
        queue.put(("done", result))
    except BaseException:  # the parent reports it and stops the others
        queue.put(("error", part.index, traceback.format_exc()))
