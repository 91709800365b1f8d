"""Rule evaluation and routing per reading: `AlertEngine.observe` and `AlertProcessor.process`.

Five cases, each on a fresh engine with its own state file and the same seeded fleet
(`alertbench.fleet`), batch by batch:

- ``engine, 0 rules``: the engine with no rules and the 10 routes: what it costs to see a
  reading at all (asset bookkeeping, the fleet clock, the per-batch settle and save);
- ``engine, defaults``: no alerts configuration at all (the 3 default rules, the default
  route), what a fresh install runs;
- ``engine, 20 rules``: the 20 rules and 10 routes of `alertbench.config`;
- ``engine, 20 rules, reroute off``: the same with ``alerts.reroute.enabled: false``, which
  isolates what the reroute advice costs;
- ``processor, 20 rules``: the 20-rule engine behind `AlertProcessor.process(readings,
  derived)`, fed ingest `Reading`s and scoring's ``anomaly`` points, so building the
  observations is in: the call the pipeline makes.

Each batch is timed alone with ``perf_counter_ns`` around the one call; the batches of the
first `WARMUP_S` seconds of event time are run but not timed (first sight of every asset:
scoping the rules, a first health record each). The batches are generated between the timed
calls, so generating them is not counted. The garbage collector stays on, as in the pipeline.

The engine is built as ``meshwatch run`` builds it (`meshwatch.alerting.build_alerts`):
`AlertState` on a file in the work dir (SQLite, WAL, ``synchronous=FULL``), `AlertMetrics` on a
registry of its own, default reroute settings, and a publisher that counts what it is asked to
publish (health and reroute messages) instead of sending it. No courier runs: notifications
stay in the outbox, as they would until the courier takes them. `AlertState.save` is timed
on the side (`TimedState`), since every batch that changes anything commits, with an fsync.
"""

from __future__ import annotations

import cProfile
import gc
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.reroute import RerouteSettings
from alerts.settings import Alerting
from alerts.state import AlertState, Changes

from .config import Rules, alerting, route_count
from .fleet import Fleet, FleetSpec, as_pipeline

#: Seconds of event time run before timing starts (every asset has been seen by then).
WARMUP_S = 20


@dataclass(frozen=True)
class Case:
    """One configuration measured: its rules, whether reroute advice is on, and the entry."""

    name: str
    rules: Rules
    reroute: bool = True
    processor: bool = False


#: The cases, in the order a round measures them.
CASES = (
    Case("engine, 0 rules", "none"),
    Case("engine, defaults", "default"),
    Case("engine, 20 rules", "bench"),
    Case("engine, 20 rules, reroute off", "bench", reroute=False),
    Case("processor, 20 rules", "bench", processor=True),
)
#: The case the goal and the profile are about: what ``meshwatch run`` calls.
PIPELINE_CASE = CASES[-1].name


class TimedState(AlertState):
    """`AlertState` that adds up the time its commits take."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.save_ns = 0
        self.commits = 0

    def save(self, changes: Changes, now: float) -> None:
        """Commit as `AlertState.save` does, timing it."""
        t0 = time.perf_counter_ns()
        try:
            super().save(changes, now)
        finally:
            self.save_ns += time.perf_counter_ns() - t0
            self.commits += 1


class CountingPublisher:
    """A `Publisher` that counts messages by topic family (health, reroute) instead of sending."""

    def __init__(self) -> None:
        self.messages: dict[str, int] = {}
        self.bytes = 0

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Count it."""
        family = topic.split("/", 2)[1]
        self.messages[family] = self.messages.get(family, 0) + 1
        self.bytes += len(payload)

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        """Count it."""
        self.publish(topic, payload)


@dataclass
class Outcome:
    """What a run's alerting decided: the same input must give the same outcome.

    Attributes
    ----------
    transitions : dict
        Alert state changes by new state (pending, firing, resolved).
    alert_points : int
        ``alert`` records returned to store.
    queued : int
        Notifications queued for the receivers (in the outbox).
    health, reroute : int
        Health and reroute messages published.
    """

    transitions: dict[str, int] = field(default_factory=dict)
    alert_points: int = 0
    queued: int = 0
    health: int = 0
    reroute: int = 0


@dataclass
class Run:
    """One case measured once.

    Attributes
    ----------
    case : str
        The name of one of `CASES`.
    round : int
        Which round (from 1).
    rules, routes : int
        Rules and routes (below the root) of its configuration.
    readings, batches : int
        Readings and batches timed.
    seconds : float
        Time of the timed calls.
    us_per_reading : float
        ``seconds`` per timed reading, in µs.
    batch_p50_ms, batch_p99_ms, batch_max_ms : float
        Time of one call, over the timed batches.
    save_us_per_reading : float
        Of ``us_per_reading``, the time spent in `AlertState.save` (commits).
    commits : int
        `AlertState.save` calls during the timed batches.
    outcome : Outcome
        What alerting decided over the whole run (warm-up included).
    """

    case: str
    round: int
    rules: int
    routes: int
    readings: int
    batches: int
    seconds: float
    us_per_reading: float
    batch_p50_ms: float
    batch_p99_ms: float
    batch_max_ms: float
    save_us_per_reading: float
    commits: int
    outcome: Outcome

    def as_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data."""
        return asdict(self)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fresh(path: Path) -> Path:
    """`path` with any SQLite file of that name (and its WAL) removed: a run starts empty."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def build_engine(
    config: Alerting, path: Path, *, reroute: bool = True
) -> tuple[AlertEngine, TimedState, CountingPublisher]:
    """An engine on a fresh state file at `path`, as ``meshwatch run`` builds it."""
    state = TimedState(path)
    publisher = CountingPublisher()
    engine = AlertEngine(
        config.rules,
        config.route,
        state,
        metrics=AlertMetrics(),
        publisher=publisher,
        reroute_settings=RerouteSettings(enabled=reroute),
    )
    return engine, state, publisher


def outcome(engine: AlertEngine, publisher: CountingPublisher, points: int) -> Outcome:
    """What the engine decided, from its metrics and the publisher's counts."""
    registry = engine.metrics.registry
    transitions: dict[str, int] = {}
    queued = 0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "meshwatch_alert_transitions_total":
                state = sample.labels["state"]
                transitions[state] = transitions.get(state, 0) + int(sample.value)
            elif (
                sample.name == "meshwatch_notifications_total"
                and sample.labels["outcome"] == "queued"
            ):
                queued += int(sample.value)
    return Outcome(
        transitions=dict(sorted(transitions.items())),
        alert_points=points,
        queued=queued,
        health=publisher.messages.get("health", 0),
        reroute=publisher.messages.get("reroute", 0),
    )


def measure(
    case: Case,
    workdir: Path,
    spec: FleetSpec,
    *,
    round_: int,
    profiler: cProfile.Profile | None = None,
) -> Run:
    """Measure one case once.

    Parameters
    ----------
    case : Case
        What to measure.
    workdir : Path
        Where its state file goes (a fresh file per run).
    spec : FleetSpec
        The fleet.
    round_ : int
        The round, for the report and the file name.
    profiler : cProfile.Profile, optional
        Enabled around each timed call only (`alertbench.hotspots`).

    Returns
    -------
    Run
        The figures.
    """
    config = alerting(case.rules)
    slug = re.sub(r"[^a-z0-9]+", "-", case.name)
    path = fresh(workdir / f"alerts-{slug}-{round_}.db")
    engine, state, publisher = build_engine(config, path, reroute=case.reroute)
    processor = AlertProcessor(engine) if case.processor else None
    fleet = Fleet(spec)
    warmup_batches = WARMUP_S * spec.assets // spec.batch
    clock = time.perf_counter_ns
    spent: list[int] = []
    readings = points = 0
    save_ns = commits = 0
    profile: cProfile.Profile | None = None
    gc.collect()
    for k, observations in enumerate(fleet.batches()):
        if k == warmup_batches:
            save_ns, commits = state.save_ns, state.commits
            if profiler is not None:
                profile = profiler
        if processor is not None:
            pipeline_readings, derived = as_pipeline(observations)
            if profile is not None:
                profile.enable()
            t0 = clock()
            made = processor.process(pipeline_readings, derived)
            processor.committed()
            t1 = clock()
        else:
            if profile is not None:
                profile.enable()
            t0 = clock()
            made = engine.observe(observations)
            engine.commit()
            t1 = clock()
        if profile is not None:
            profile.disable()
        points += len(made)
        if k >= warmup_batches:
            spent.append(t1 - t0)
            readings += len(observations)
    save_ns, commits = state.save_ns - save_ns, state.commits - commits
    result = outcome(engine, publisher, points)
    engine.close()
    total = sum(spent)
    ms = sorted(s / 1e6 for s in spent)
    return Run(
        case=case.name,
        round=round_,
        rules=len(config.rules),
        routes=route_count(config),
        readings=readings,
        batches=len(spent),
        seconds=total / 1e9,
        us_per_reading=total / 1000 / max(1, readings),
        batch_p50_ms=_percentile(ms, 0.5) if ms else 0.0,
        batch_p99_ms=_percentile(ms, 0.99) if ms else 0.0,
        batch_max_ms=ms[-1] if ms else 0.0,
        save_us_per_reading=save_ns / 1000 / max(1, readings),
        commits=commits,
        outcome=result,
    )


@dataclass
class Summary:
    """One case over its rounds: the median µs per reading and its range."""

    case: str
    us_median: float
    us_min: float
    us_max: float
    save_us_median: float


def summarise(runs: list[Run]) -> list[Summary]:
    """Median per case, in `CASES` order."""
    out = []
    for case in CASES:
        mine = [r for r in runs if r.case == case.name]
        if not mine:
            continue
        us = [r.us_per_reading for r in mine]
        out.append(
            Summary(
                case.name,
                statistics.median(us),
                min(us),
                max(us),
                statistics.median(r.save_us_per_reading for r in mine),
            )
        )
    return out


def check(runs: list[Run]) -> list[str]:
    """Problems: no alert fired and resolved, or runs of one configuration decided differently.

    The engine and the processor with the 20 rules see the same readings, so they must make
    the same decisions, round after round; with reroute off, the same but for the advice.
    """
    problems = []
    for r in runs:
        t = r.outcome.transitions
        if r.rules and (not t.get("firing") or not t.get("resolved")):
            problems.append(f"{r.case} round {r.round}: no alert fired and resolved ({t})")
        if not r.rules and (t or r.outcome.queued):
            problems.append(f"{r.case} round {r.round}: alerts without any rule ({t})")
    by_case = {c.name: c for c in CASES}
    groups: dict[tuple[Rules, bool], list[Run]] = {}
    for r in runs:
        case = by_case[r.case]
        groups.setdefault((case.rules, case.reroute), []).append(r)
    for (rules, reroute), mine in groups.items():
        if any(r.outcome != mine[0].outcome for r in mine):
            problems.append(
                f"runs with {rules} rules (reroute {'on' if reroute else 'off'}) decided "
                "differently on the same readings"
            )
    plain = groups.get(("bench", True), [])
    for r in groups.get(("bench", False), []):
        if plain and r.outcome.transitions != plain[0].outcome.transitions:
            problems.append(f"{r.case} round {r.round}: reroute off changed the alerts")
        if r.outcome.reroute:
            problems.append(f"{r.case} round {r.round}: reroute advice published while off")
    return problems
