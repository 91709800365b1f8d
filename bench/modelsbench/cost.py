"""What one asset model costs: time per reading, warm-up time, pickled size, resident memory.

Everything goes through `models.asset.AssetModel.process`, the call the pipeline makes once
per reading (score, decide, learn when the policy allows), on the readings of
`modelsbench.readings`, with ``ts`` one second apart.

- **Per reading**: each of ``repeats`` fresh models first learns its warm-up (timed as one
  block: the warm-up cost, which for the control chart includes fitting it), then processes
  ``readings`` more, each call timed alone with ``perf_counter_ns`` (the timer's own cost,
  measured first, is subtracted). A repeat's figure is the mean of its calls; the table
  gives the median over repeats, their range, and p50/p99 over every timed call. The
  garbage collector stays on, as in the pipeline; it runs a full collection before each
  repeat. An untimed model of the same case runs first, so one-off costs (lazy imports,
  LAPACK's first call) stay out.
- **Pickled**: ``len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))`` of the last
  repeat's model after its timed readings (what a checkpoint row holds).
- **Resident**: with ``tracemalloc`` tracing, ``memory_models`` models are built and each
  processes its warm-up plus `TAIL` readings; the traced memory they hold after a full
  collection, divided by their number. The readings are generated before tracing starts, so
  they are not counted; what the models share (the profile, interned metric names) is not
  counted either. tracemalloc counts what Python and numpy ask the allocator for, so the
  allocator's own overhead comes on top.
"""

from __future__ import annotations

import gc
import pickle
import statistics
import time
import tracemalloc
from dataclasses import dataclass

from models.asset import AssetModel

from .cases import Case
from .readings import readings

#: Readings each memory model processes after its warm-up, so that it is in steady state.
TAIL = 100
#: ``ts`` of the first reading (epoch ms) and the step between readings.
BASE_TS_MS = 1_700_000_000_000
STEP_MS = 1000


@dataclass
class Cost:
    """What one model of a case costs with readings of ``metrics`` metrics.

    Attributes
    ----------
    case : str
        The case's label.
    default : bool
        Whether it is the shipped default profile.
    metrics : int
        Metrics per reading.
    warmup : int
        The profile's warm-up length in readings.
    repeats, readings : int
        Fresh models timed, and readings timed on each after its warm-up.
    us_median : float
        Median over repeats of the mean µs per `AssetModel.process` call after warm-up.
    us_min, us_max : float
        Lowest and highest repeat mean.
    us_p50, us_p99 : float
        Percentiles of every timed call.
    warmup_ms : float
        Median over repeats of the time to process the first ``warmup`` readings.
    flagged : float
        Fraction of the timed readings flagged anomalous (they are not learned from).
    pickled_bytes : int
        Size of one model pickled after warm-up and the timed readings.
    resident_bytes : float
        Traced memory per model after warm-up.
    memory_models : int
        Models the resident figure is averaged over.
    """

    case: str
    default: bool
    metrics: int
    warmup: int
    repeats: int
    readings: int
    us_median: float
    us_min: float
    us_max: float
    us_p50: float
    us_p99: float
    warmup_ms: float
    flagged: float
    pickled_bytes: int
    resident_bytes: float
    memory_models: int


def timer_overhead_ns(samples: int = 20_000) -> float:
    """Median ns between two back-to-back ``perf_counter_ns`` calls (subtracted per call)."""
    clock = time.perf_counter_ns
    gaps = []
    for _ in range(samples):
        t0 = clock()
        gaps.append(clock() - t0)
    return statistics.median(gaps)


def _process(model: AssetModel, xs: list[dict[str, float]], first: int) -> int:
    """Process ``xs`` as readings ``first``, ``first + 1``...; return how many were flagged."""
    flagged = 0
    for i, x in enumerate(xs, start=first):
        flagged += model.process(BASE_TS_MS + i * STEP_MS, x).anomalous
    return flagged


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    case: Case, width: int, *, repeats: int, timed: int, memory_models: int, seed: int
) -> Cost:
    """Measure one case with readings of ``width`` metrics.

    Parameters
    ----------
    case : Case
        The profile.
    width : int
        Metrics per reading.
    repeats : int
        Fresh models timed.
    timed : int
        Readings timed on each after its warm-up.
    memory_models : int
        Models built under tracemalloc.
    seed : int
        Seed of the readings; repeat ``r`` uses ``seed + r``.

    Returns
    -------
    Cost
        The figures.
    """
    profile = case.profile
    warmup = profile.warmup
    clock = time.perf_counter_ns
    overhead = timer_overhead_ns()

    # untimed: lazy imports and first calls
    _process(AssetModel(profile), readings(width, warmup + 50, seed - 1), 0)

    means: list[float] = []
    calls: list[float] = []
    warmups: list[float] = []
    flagged = 0
    model = AssetModel(profile)
    for r in range(repeats):
        xs = readings(width, warmup + timed, seed + r)
        model = AssetModel(profile)
        gc.collect()
        t0 = clock()
        _process(model, xs[:warmup], 0)
        warmups.append((clock() - t0) / 1e6)
        process = model.process
        spent: list[float] = []
        for i in range(warmup, warmup + timed):
            ts, x = BASE_TS_MS + i * STEP_MS, xs[i]
            t0 = clock()
            verdict = process(ts, x)
            spent.append((clock() - t0 - overhead) / 1000)
            flagged += verdict.anomalous
        means.append(statistics.fmean(spent))
        calls.extend(spent)
    calls.sort()
    pickled = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))

    return Cost(
        case=case.label,
        default=case.default,
        metrics=width,
        warmup=warmup,
        repeats=repeats,
        readings=timed,
        us_median=statistics.median(means),
        us_min=min(means),
        us_max=max(means),
        us_p50=_percentile(calls, 0.50),
        us_p99=_percentile(calls, 0.99),
        warmup_ms=statistics.median(warmups),
        flagged=flagged / (repeats * timed),
        pickled_bytes=pickled,
        resident_bytes=resident_bytes(case, width, memory_models, seed),
        memory_models=memory_models,
    )


def resident_bytes(case: Case, width: int, count: int, seed: int) -> float:
    """Traced memory per model of ``count`` models, each after warm-up plus `TAIL` readings.

    Parameters
    ----------
    case : Case
        The profile.
    width : int
        Metrics per reading.
    count : int
        Models built while tracing.
    seed : int
        Seed of the readings (every model gets the same ones).

    Returns
    -------
    float
        Bytes per model.
    """
    xs = readings(width, case.profile.warmup + TAIL, seed)
    models: list[AssetModel] = []
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            model = AssetModel(case.profile)
            _process(model, xs, 0)
            models.append(model)
        del model
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del models
    return held / count
