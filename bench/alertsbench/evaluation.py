"""Rule evaluation and routing per reading: `AlertEngine.observe` and `AlertProcessor.process`.

Five cases, each on a fresh engine with its own state file and the same seeded fleet
(`alertsbench.fleet`), batch by batch:

- ``engine, 0 rules``: the engine with no rules and the 10 routes: what it costs to see a
  reading at all (asset bookkeeping, the fleet clock, the per-batch settle and save);
- ``engine, defaults``: no alerts configuration at all (the 3 default rules, the default
  route), what a fresh install runs;
- ``engine, 20 rules``: the 20 rules and 10 routes of `alertsbench.config`;
- ``engine, 20 rules, reroute off``: the same with ``alerts.reroute.enabled: false``, which
  isolates what the reroute advice costs;
- ``processor, 20 rules``: the 20-rule engine behind `AlertProcessor.process(readings,
  derived)`, fed ingest `Reading`s and scoring's ``anomaly`` points, so building the
  observations is in: the call the pipeline makes.

Each batch is timed alone with ``perf_counter_ns`` around the one call; the batches of the
first `WARMUP_S` seconds of event time are run but not timed (first sight of every asset:
scoping the rules, a first health record each). The batches are generated between the timed
calls, so generating them is not counted. The garbage collector stays on, as in the pipeline.

After the timed run, untimed, the fleet recovers (`Fleet.recovery`: faults over, nothing
flagged, every asset reporting) until no alert is open, for at most `recovery_limit` seconds
of event time: every alert the run fired must resolve, each after what its rule demands
(``resolve_after`` clear readings, ``keep_firing_for``, a flapping alert's quiet). The shipped
defaults keep an anomaly alert firing for at least 5 minutes, longer than the run, so without
the recovery the run could never show them resolve. The checks (`check`) then hold every case
with rules to: alerts fired and resolved, none left open, as many resolutions as firings.

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
from alerts.health.reroute import RerouteSettings
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.rules import AnomalyRule, LimitRule
from alerts.settings import Alerting
from alerts.state import AlertState, Changes
from ingest.base import Point

from .config import Rules, alerting, route_count
from .fleet import BASE_TS, Fleet, FleetSpec, as_pipeline

#: Seconds of event time run before timing starts (every asset has been seen by then).
WARMUP_S = 20
#: Event seconds the recovered fleet gets beyond what the slowest rule needs to resolve an
#: alert (readings of one asset are a second apart; a minute covers batching and the deadman's
#: once-a-second check).
RECOVERY_MARGIN_S = 60
_NS = 1_000_000_000


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
        Alert state changes by new state (pending, firing, resolved), the recovery included.
    alert_points, health_points : int
        ``alert`` and ``health`` records returned to store (the engine cases take the health
        records with `AlertEngine.health_points` after each call, as the processor does).
    queued : int
        Notifications queued for the receivers (in the outbox).
    health, reroute : int
        Health and reroute messages published.
    recovery_s : int
        Event seconds of the recovered fleet until no alert was open (0: none was open).
    left_open : int
        Alerts still open when the recovery gave up (`recovery_limit`): stuck alerts.
    """

    transitions: dict[str, int] = field(default_factory=dict)
    alert_points: int = 0
    health_points: int = 0
    queued: int = 0
    health: int = 0
    reroute: int = 0
    recovery_s: int = 0
    left_open: int = 0


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
        What alerting decided over the whole run (warm-up and recovery included).
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


def recovery_limit(config: Alerting) -> int:
    """Event seconds a recovered fleet gets to resolve every alert of this configuration.

    The slowest rule's need, with every hold added up: ``keep_firing_for`` after firing, a
    flapping alert's quiet, then ``resolve_after`` clear readings (a second apart), plus
    `RECOVERY_MARGIN_S`. A deadman alert resolves on its asset's next reading.
    """
    need = 0.0
    for rule in config.rules:
        if isinstance(rule, AnomalyRule | LimitRule):
            quiet = rule.flapping.quiet if rule.flapping is not None else 0.0
            need = max(need, rule.for_ + rule.keep_firing_for + quiet + rule.resolve_after)
    return int(need) + RECOVERY_MARGIN_S


def _counted(made: list[Point]) -> tuple[int, int]:
    """The ``alert`` and the ``health`` records among `made`."""
    alerts = sum(1 for p in made if p.measurement == "alert")
    return alerts, len(made) - alerts


def outcome(
    engine: AlertEngine,
    publisher: CountingPublisher,
    points: tuple[int, int],
    *,
    recovery_s: int = 0,
    left_open: int = 0,
) -> Outcome:
    """What the engine decided, from its metrics, the records and the publisher's counts."""
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
        alert_points=points[0],
        health_points=points[1],
        queued=queued,
        health=publisher.messages.get("health", 0),
        reroute=publisher.messages.get("reroute", 0),
        recovery_s=recovery_s,
        left_open=left_open,
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
        Enabled around each timed call only (`alertsbench.hotspots`).

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
    readings = alert_points = health_points = 0
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
            made += engine.health_points()  # untimed: taking a list is all it costs
        if profile is not None:
            profile.disable()
        alerts, health = _counted(made)
        alert_points, health_points = alert_points + alerts, health_points + health
        if k >= warmup_batches:
            spent.append(t1 - t0)
            readings += len(observations)
    save_ns, commits = state.save_ns - save_ns, state.commits - commits
    recovery_s, left_open, alerts, health = _recover(
        engine, processor, fleet, spec.seconds, recovery_limit(config)
    )
    result = outcome(
        engine,
        publisher,
        (alert_points + alerts, health_points + health),
        recovery_s=recovery_s,
        left_open=left_open,
    )
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


def _recover(
    engine: AlertEngine, processor: AlertProcessor | None, fleet: Fleet, after_s: int, limit_s: int
) -> tuple[int, int, int, int]:
    """Feed the recovered fleet (untimed) until no alert is open or `limit_s` have passed.

    Through the same entry as the timed run. Returns the event seconds it took, the alerts
    still open, and the ``alert`` and ``health`` records made meanwhile.
    """
    alert_points = health_points = seconds = 0
    if not engine.open_alerts():
        return 0, 0, 0, 0
    for observations in fleet.recovery():
        if processor is not None:
            made = processor.process(*as_pipeline(observations))
            processor.committed()
        else:
            made = engine.observe(observations)
            engine.commit()
            made += engine.health_points()
        alerts, health = _counted(made)
        alert_points, health_points = alert_points + alerts, health_points + health
        seconds = (observations[-1].ts - BASE_TS) // _NS + 1 - after_s
        if not engine.open_alerts() or seconds >= limit_s:
            break
    return seconds, len(engine.open_alerts()), alert_points, health_points


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
    """Problems: alerts that did not fire and resolve, or runs that decided differently.

    Every case with rules must fire alerts and, once the fleet has recovered, resolve every
    one of them: none left open, and as many resolutions as firings. The engine and the
    processor with the 20 rules see the same readings, so they must make the same decisions
    (records, notifications, messages), round after round; with reroute off, the same alerts.
    """
    problems = []
    for r in runs:
        o = r.outcome
        t = o.transitions
        fired, resolved = t.get("firing", 0), t.get("resolved", 0)
        if r.rules and (not fired or not resolved):
            problems.append(f"{r.case} round {r.round}: no alert fired and resolved ({t})")
        if r.rules and o.left_open:
            problems.append(
                f"{r.case} round {r.round}: {o.left_open} alerts still open {o.recovery_s} s "
                "after the fleet recovered"
            )
        elif r.rules and fired != resolved:
            problems.append(
                f"{r.case} round {r.round}: {fired} alerts fired but {resolved} resolved, "
                "and none is open"
            )
        if not r.rules and (t or o.queued):
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
