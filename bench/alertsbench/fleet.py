"""The synthetic fleet: seeded readings with their verdicts, mostly normal, some failing.

``assets`` assets over ``sites`` sites and five kinds, each reporting once a second of event
time, five realistic metrics a reading (the last is ``utilization``, the load metric reroute
advice ranks by). Asset ``i`` is at site ``i % sites`` and its number at the site is
``j = i // sites``, of kind ``j % 5``, so every site has every kind. Within a second the
assets report in index order, with distinct, increasing timestamps.

What happens to an asset, decided by one `random.Random` seeded per run, so every
configuration measured sees the very same readings:

- normal readings: each metric is its level plus Gaussian noise; the score is uniform in
  0.05-0.35 and `FLAG_P` of them are flagged anomalous on their own (score 0.5-0.7), which
  opens pending episodes that close again (single outliers);
- faults start on one reading in ``fault_every`` (default `FAULT_EVERY`) and last 15-60
  readings: one metric of
  the kind ramps over `RAMP` readings to its fault value (past the limit rules), the score
  rises towards 0.98 and nine readings in ten are flagged, so anomaly and limit alerts fire,
  and resolve after the fault;
- dropouts: with probability `DROPOUT_P` a reading an asset goes silent for `DROPOUT_S`
  seconds (past the 60 s deadman); and when the run spans at least 150 s, the last site goes
  dark for `DROPOUT_S` seconds from a third of the way in (a site-wide deadman alert, which
  inhibits its assets' alerts).

After the run, `Fleet.recovery` goes on from where it ended with the whole fleet well: every
fault over, every silent asset and the dark site reporting again, no reading flagged and every
score under 0.35 (below any rule's ``resolve_below``). Whatever is still open must then
resolve as its rule allows: the shipped default anomaly rules hold a firing alert for at least
5 minutes (``keep_firing_for``), longer than the run itself, so only a recovered fleet can
show them resolve.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from alerts.base import Observation
from ingest.base import Point, Reading
from models.base import AnomalyPoint, Verdict

#: Event time of the first reading, ns (2023-11-14, as the ingest benchmark's 1.7e12 ms).
BASE_TS = 1_700_000_000 * 1_000_000_000
_NS = 1_000_000_000
#: A fault starts on about one reading in 1,500: with 2,000 assets, ~1.3 new faults a second
#: and, at ~37 readings each, ~2.5 % of the fleet failing at any time (a bad day: every
#: firing is a health change, and the per-batch work grows with the failing assets).
FAULT_EVERY = 1500
#: Readings a fault takes to reach its full value.
RAMP = 8
#: Share of normal readings the model flags on their own (the default control chart flags
#: 0-2.6 % of synthetic readings after warm-up: bench/README.md, scoring section).
FLAG_P = 0.005
#: An asset drops out on about one reading in 50,000 (~2 dropouts a minute across the fleet).
DROPOUT_P = 1 / 50_000
#: Seconds a dropped-out asset or the dark site stays silent: past the 60 s deadman rule.
DROPOUT_S = 90


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of a kind: its operating level, its noise, and what a fault does to it."""

    name: str
    level: float
    noise: float
    fault: float | None = None


#: The five kinds: asset-name prefix and metrics (the fault values cross the limit rules of
#: `alertsbench.config`).
KINDS: tuple[tuple[str, str, tuple[MetricSpec, ...]], ...] = (
    (
        "cnc-mill",
        "cnc",
        (
            MetricSpec("spindle_temp_c", 62.0, 3.0, 95.0),
            MetricSpec("vibration_rms", 2.5, 0.4, 12.0),
            MetricSpec("spindle_rpm", 12_000.0, 150.0),
            MetricSpec("power_kw", 18.0, 2.0),
        ),
    ),
    (
        "injection-molder",
        "imm",
        (
            MetricSpec("barrel_temp_c", 225.0, 4.0, 270.0),
            MetricSpec("pressure_bar", 1400.0, 60.0, 1850.0),
            MetricSpec("cycle_time_s", 32.0, 1.5),
            MetricSpec("power_kw", 30.0, 3.0),
        ),
    ),
    (
        "compressor",
        "cmp",
        (
            MetricSpec("discharge_temp_c", 85.0, 3.0, 115.0),
            MetricSpec("pressure_bar", 7.5, 0.2, 4.2),
            MetricSpec("current_a", 28.0, 2.0, 45.0),
            MetricSpec("vibration_rms", 3.0, 0.5),
        ),
    ),
    (
        "conveyor",
        "cnv",
        (
            MetricSpec("motor_temp_c", 55.0, 3.0, 90.0),
            MetricSpec("speed_mps", 1.2, 0.05, 0.0),
            MetricSpec("current_a", 12.0, 1.0),
            MetricSpec("vibration_rms", 1.8, 0.3, 8.0),
        ),
    ),
    (
        "robot-arm",
        "rob",
        (
            MetricSpec("joint_temp_c", 48.0, 2.0),
            MetricSpec("torque_nm", 90.0, 10.0, 170.0),
            MetricSpec("current_a", 20.0, 2.0, 42.0),
            MetricSpec("fault_code", 0.0, 0.0, 3.0),
        ),
    ),
)


@dataclass(slots=True)
class _Asset:
    site: str
    asset: str
    kind: str
    metrics: tuple[MetricSpec, ...]
    faulty: tuple[int, ...]  # indexes of the metrics a fault can drive
    fault_left: int = 0
    fault_metric: int = 0
    fault_step: int = 0
    silent_until: int = 0


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """What a run's fleet is.

    Parameters
    ----------
    assets, sites
        Fleet size.
    seconds
        Event seconds the run spans (decides whether the site outage fits).
    batch
        Readings per batch (the last batch of the run may be shorter).
    seed
        Seed of everything random.
    fault_every
        A fault starts on one reading in this many.
    """

    assets: int = 2000
    sites: int = 50
    seconds: int = 240
    batch: int = 1000
    seed: int = 20261125
    fault_every: int = FAULT_EVERY


class Fleet:
    """Batches of `Observation` for ``spec.seconds`` of event time, deterministic per seed.

    `batches` is the run; `recovery`, after it, the fleet recovered, for as long as asked.

    Parameters
    ----------
    spec
        The fleet.
    """

    def __init__(self, spec: FleetSpec) -> None:
        assets, sites, seconds = spec.assets, spec.sites, spec.seconds
        self.batch = spec.batch
        self.seconds = seconds
        self._fault_p = 1 / spec.fault_every
        self._rng = random.Random(spec.seed)
        self._assets: list[_Asset] = []
        for i in range(assets):
            j = i // sites
            kind, prefix, metrics = KINDS[j % len(KINDS)]
            faulty = tuple(k for k, m in enumerate(metrics) if m.fault is not None)
            self._assets.append(
                _Asset(f"site-{i % sites:02d}", f"{prefix}-{j:03d}", kind, metrics, faulty)
            )
        self.dark_site = f"site-{sites - 1:02d}" if seconds >= 150 else None
        self._dark = (seconds // 3, seconds // 3 + DROPOUT_S)

    def batches(self) -> Iterator[list[Observation]]:
        """The run's readings, ``batch`` at a time."""
        return self._batched(range(self.seconds), calm=False)

    def recovery(self) -> Iterator[list[Observation]]:
        """The fleet after the run, recovered, ``batch`` readings at a time, without end.

        Call it once `batches` is exhausted: it goes on from the run's last second. Every
        fault is over, no new one starts, nobody drops out, the silent assets and the dark
        site report again, and the readings are normal and never flagged.
        """
        for a in self._assets:
            a.fault_left = 0
            a.silent_until = 0
        return self._batched(itertools.count(self.seconds), calm=True)

    def _batched(self, seconds: Iterable[int], *, calm: bool) -> Iterator[list[Observation]]:
        out: list[Observation] = []
        for second in seconds:
            for obs in self._second(second, calm=calm):
                out.append(obs)
                if len(out) == self.batch:
                    yield out
                    out = []
        if out:
            yield out

    def _second(self, second: int, *, calm: bool) -> Iterator[Observation]:
        rng = self._rng
        rand, gauss = rng.random, rng.gauss
        step = _NS // max(1, len(self._assets))
        dark = self.dark_site if not calm and self._dark[0] <= second < self._dark[1] else None
        flag_p = 0.0 if calm else FLAG_P
        base = BASE_TS + second * _NS
        for i, a in enumerate(self._assets):
            if a.silent_until > second or a.site == dark:
                continue
            if not calm:
                if rand() < DROPOUT_P:
                    a.silent_until = second + DROPOUT_S
                    continue
                if a.fault_left == 0 and rand() < self._fault_p:
                    a.fault_left = rng.randint(15, 60)
                    a.fault_metric = rng.choice(a.faulty)
                    a.fault_step = 0
            metrics: dict[str, float] = {}
            for m in a.metrics:
                metrics[m.name] = m.level + m.noise * gauss()
            metrics["utilization"] = min(1.0, max(0.0, 0.6 + 0.15 * gauss()))
            if a.fault_left:
                a.fault_left -= 1
                a.fault_step += 1
                ramp = min(1.0, a.fault_step / RAMP)
                m = a.metrics[a.fault_metric]
                assert m.fault is not None
                metrics[m.name] = (
                    m.level + (m.fault - m.level) * ramp + m.noise * (1 - ramp) * gauss()
                )
                anomalous = rand() >= 0.1
                score = 0.55 + 0.43 * ramp * (0.9 + 0.1 * rand())
                top: str | None = m.name
            else:
                anomalous = rand() < flag_p
                score = 0.5 + 0.2 * rand() if anomalous else 0.05 + 0.3 * rand()
                top = a.metrics[int(rand() * len(a.metrics))].name if anomalous else None
            yield Observation(
                a.site, a.asset, a.kind, base + i * step, metrics, score, anomalous, top, False
            )


def as_pipeline(batch: list[Observation]) -> tuple[list[Reading], list[Point]]:
    """The same batch as the pipeline hands it to alerting: readings, and scoring's points.

    The ``anomaly`` points are built as `models.scoring.ScoringProcessor` builds them
    (`models.base.AnomalyPoint`, tags site, asset and detector).
    """
    readings: list[Reading] = []
    points: list[Point] = []
    for o in batch:
        readings.append(Reading(o.site, o.asset, o.kind, o.ts, o.metrics))
        score = o.score if o.score is not None else 0.0
        verdict = Verdict(score, 0.5, o.anomalous, o.warming_up, o.top_metric or "")
        tags = {"site": o.site, "asset": o.asset, "detector": "control_chart"}
        points.append(AnomalyPoint.of(verdict, tags, o.ts))
    return readings, points
