"""The whole pipeline with scoring on and off: ``meshwatch run`` draining the same backlog.

This reuses the ingest benchmark's machinery (`benchcommon`) as it is: one mosquitto for the
whole run, its workloads (50 assets at 5 sites, 4 metrics a reading, single-reading messages and
50-reading batches), its publisher, and its `benchcommon.meshwatch_run.MeshwatchRun`, which
publishes a workload's backlog at QoS 1 while ``meshwatch run`` is offline, then times the
drain by polling the store's ``count(*)`` and checks the store. The two runs differ by one
setting only: ``MESHWATCH_MODELS__ENABLED=false`` for "off", ``true`` for "on"; the very same
payload bytes are published to both.

After each drain the store's ``anomaly`` table is checked too: one row per reading with
scoring on (the scores are committed with the readings), none with it off; with scoring on,
``models.db`` must hold a checkpoint for every asset (meshwatch saves them at SIGTERM).
With ``rounds`` above 1 the two runs alternate (off, on, then on, off...).
"""

from __future__ import annotations

import sqlite3
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchcommon.base import Bench, Drain
from benchcommon.meshwatch_run import MeshwatchRun
from benchcommon.workloads import make_workload
from rich.console import Console

from meshwatch.localservers import Mosquitto, free_port

#: Subscriber names in the table.
SCORING_OFF = "scoring off"
SCORING_ON = "scoring on"


@dataclass
class Run:
    """One drain of ``meshwatch run``, with scoring on or off.

    Attributes
    ----------
    drain : Drain
        The ingest benchmark's result (rates, CPU, store checks).
    scoring : bool
        Whether scoring was on.
    round : int
        Which round, from 1.
    anomaly_rows : int or None
        Rows in the store's ``anomaly`` table after the drain.
    flagged : int or None
        Of those, rows with ``anomalous`` true.
    checkpoints : int or None
        Models in ``models.db`` after meshwatch stopped (None if there is no such file).
    """

    drain: Drain
    scoring: bool
    round: int
    anomaly_rows: int | None = None
    flagged: int | None = None
    checkpoints: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The run as plain data, rates included."""
        return {
            **asdict(self),
            "total_rate": self.drain.total_rate,
            "steady_rate": self.drain.steady_rate,
        }


@dataclass
class Comparison:
    """Scoring on against off for one workload, over every round.

    Attributes
    ----------
    workload : str
        Workload name.
    off, on : float or None
        Median first→last readings/s over the rounds (None if a run failed or was too short).
    runs : list of Run
        The runs behind the medians.
    """

    workload: str
    off: float | None
    on: float | None
    runs: list[Run] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """Readings/s on ÷ off."""
        return None if self.on is None or not self.off else self.on / self.off

    @property
    def added_us(self) -> float | None:
        """Wall-clock µs per reading that scoring adds to the pipeline (1/on - 1/off)."""
        if self.on is None or self.off is None:
            return None
        return 1e6 / self.on - 1e6 / self.off


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def check_scoring(run: Run, data_dir: Path, readings: int, assets: int) -> None:
    """Count the anomaly rows and checkpoints of a finished run; note what is wrong.

    Parameters
    ----------
    run : Run
        The run; its counts are set and problems appended to ``run.drain.checks``.
    data_dir : Path
        meshwatch's data dir of that run.
    readings, assets : int
        What the workload published.
    """
    db = data_dir / "meshwatch.db"
    if not db.exists():
        return  # the drain failed before the store existed: its status says why
    conn = _read_only(db)
    try:
        rows, flagged = conn.execute(
            "SELECT count(*), coalesce(sum(json_extract(fields, '$.anomalous') = 1), 0)"
            " FROM anomaly"
        ).fetchone()
    finally:
        conn.close()
    run.anomaly_rows, run.flagged = int(rows), int(flagged)
    models_db = data_dir / "models.db"
    if models_db.exists():
        conn = _read_only(models_db)
        try:
            (run.checkpoints,) = conn.execute("SELECT count(*) FROM models").fetchone()
        finally:
            conn.close()
    want = readings if run.scoring else 0
    if rows != want:
        run.drain.checks.append(f"{rows:,} anomaly rows, expected {want:,}")
    if run.scoring and run.checkpoints != assets:
        run.drain.checks.append(f"{run.checkpoints} models checkpointed, expected {assets}")


def _median(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return statistics.median(v for v in values if v is not None)


def compare(
    console: Console,
    workdir: Path,
    plan: list[tuple[str, int, int]],
    *,
    assets: int,
    sites: int,
    rounds: int,
) -> list[Comparison]:
    """Drain each workload of ``plan`` with scoring off and on, ``rounds`` times each.

    Parameters
    ----------
    console : Console
        Progress output.
    workdir : Path
        Broker files, data dirs and logs.
    plan : list of tuple of (str, int, int)
        Workloads as (name, messages, readings per message).
    assets, sites : int
        How many assets at how many sites send the messages.
    rounds : int
        Drains of each workload with each setting.

    Returns
    -------
    list of Comparison
        One per workload, in plan order.
    """
    comparisons = []
    with Mosquitto(workdir / "mosquitto", free_port()) as broker:
        bench = Bench(broker, workdir, console, None)
        off = MeshwatchRun(
            bench, name=SCORING_OFF, tag="scoring-off",
            settings={"MESHWATCH_MODELS__ENABLED": "false"},
        )  # fmt: skip
        on = MeshwatchRun(
            bench, name=SCORING_ON, tag="scoring-on",
            settings={"MESHWATCH_MODELS__ENABLED": "true"},
        )  # fmt: skip
        for name, messages, batch in plan:
            workload = make_workload(name, messages, batch, assets, sites)
            console.log(f"{name}: {messages:,} messages, {workload.readings:,} readings")
            runs: list[Run] = []
            for r in range(1, rounds + 1):
                order = (off, on) if r % 2 else (on, off)
                for runner in order:
                    run = Run(runner.drain(workload), runner is on, r)
                    check_scoring(run, runner.data_dir(workload), workload.readings, assets)
                    console.log(
                        f"{name} / {run.drain.subscriber} (round {r}): {run.drain.status}, "
                        f"{run.drain.steady_rate or 0:,.0f} readings/s first→last"
                    )
                    runs.append(run)
            comparisons.append(
                Comparison(
                    name,
                    _median([x.drain.steady_rate for x in runs if not x.scoring]),
                    _median([x.drain.steady_rate for x in runs if x.scoring]),
                    runs,
                )
            )
            del workload
    return comparisons
