"""One measurement, in a child process whose ``PYTHONPATH`` is the tree measured.

Only the pipeline's public assembly is used (`meshwatch.app.build`, `IngestPipeline.prepare`
and `IngestPipeline.commit`), so that an older tree runs the same code as a newer one.
"""

from __future__ import annotations

import gc
import hashlib
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchcommon.workloads import make_workload

#: The tables the pipeline writes, digested in primary-key order.
TABLES = ("telemetry", "anomaly", "alert", "health", "notification", "alert_action")
#: Random ids (uuid4 hex) in the rows, masked before digesting: notifications get one each.
_RANDOM_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Spec:
    """What one child measures.

    Attributes
    ----------
    workload : str
        ``single`` or ``batched``.
    messages, batch, assets, sites : int
        The workload (`benchcommon.workloads.make_workload`).
    batch_max : int
        Messages per `IngestPipeline.prepare` call.
    data_dir : str
        A fresh data dir for the pipeline.
    """

    workload: str
    messages: int
    batch: int
    assets: int
    sites: int
    batch_max: int
    data_dir: str


@dataclass
class Result:
    """What one child measured.

    Attributes
    ----------
    readings : int
        Readings in the workload.
    cpu_s, wall_s : float
        CPU seconds of the process and wall seconds inside `prepare` and `commit`.
    us_per_reading : float
        ``cpu_s`` per reading, in µs.
    full_collections : int
        The garbage collector's full (generation 2) collections during the timed part.
    tuned_gc : bool
        Whether the tree's ``meshwatch run`` tunes the garbage collector (`meshwatch.app.tune_gc`).
    digest : str
        SHA-256 of every row the pipeline wrote (see `digest`).
    problems : list of str
        Failed checks of the store; empty when it holds what it should.
    module : str
        Where ``meshwatch`` was imported from: the tree measured.
    """

    readings: int
    cpu_s: float
    wall_s: float
    us_per_reading: float
    full_collections: int
    tuned_gc: bool
    digest: str
    problems: list[str]
    module: str


def measure(spec: Spec) -> Result:
    """Build the pipeline, feed it the workload batch by batch, time it, check the store."""
    import meshwatch
    import meshwatch.app
    from ingest.pipeline import Message
    from meshwatch.settings import Settings

    workload = make_workload(spec.workload, spec.messages, spec.batch, spec.assets, spec.sites)
    data_dir = Path(spec.data_dir)
    app = meshwatch.app.build(Settings(data_dir=data_dir, http={"port": 0}))
    tune_gc = getattr(meshwatch.app, "tune_gc", None)
    if tune_gc is not None:
        tune_gc()
    pipeline = app.pipeline
    arrival = time.time_ns()
    messages = workload.messages
    cpu = wall = 0.0
    full_before = gc.get_stats()[2]["collections"]
    for start in range(0, len(messages), spec.batch_max):
        chunk = [
            Message(topic, payload, arrival + i, mid=i)
            for i, (topic, payload) in enumerate(messages[start : start + spec.batch_max], start)
        ]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pipeline.commit(pipeline.prepare(chunk))
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
    full = gc.get_stats()[2]["collections"] - full_before
    app.close()
    readings = workload.readings
    return Result(
        readings=readings,
        cpu_s=cpu,
        wall_s=wall,
        us_per_reading=cpu / readings * 1e6,
        full_collections=full,
        tuned_gc=tune_gc is not None,
        digest=digest(data_dir / "meshwatch.db"),
        problems=check(data_dir, readings),
        module=str(Path(meshwatch.__file__).resolve().parent.parent),
    )


def check(data_dir: Path, readings: int) -> list[str]:
    """What is wrong with the store: a row per reading in telemetry and anomaly, no dead letter."""
    problems = []
    with sqlite3.connect(data_dir / "meshwatch.db") as conn:
        for table in ("telemetry", "anomaly"):
            (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if n != readings:
                problems.append(f"{table} has {n:,} rows, expected {readings:,}")
    with sqlite3.connect(data_dir / "deadletters.db") as conn:
        (letters,) = conn.execute("SELECT count(*) FROM deadletters").fetchone()
    if letters:
        problems.append(f"{letters:,} dead letters")
    return problems


def digest(db: Path) -> str:
    """SHA-256 of every row of `TABLES`, in primary-key order, random ids masked."""
    from ingest.embedded import TAGS

    h = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        for table in TABLES:
            h.update(f"table {table}\n".encode())
            key = ", ".join((*TAGS[table], "ts"))
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {key}"):
                h.update(_RANDOM_ID.sub("-", repr(row)).encode())
                h.update(b"\n")
    return h.hexdigest()


def result_dict(result: Result) -> dict[str, object]:
    """The result as JSON-ready values (the child's one line of output)."""
    return asdict(result)
