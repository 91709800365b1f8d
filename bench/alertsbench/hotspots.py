"""Where the alerting time goes: one run of the pipeline case under `cProfile`.

The profiled run is a separate, extra run of ``processor, 20 rules`` (same fleet, same seed),
with the profiler on only around the timed calls, so the profile holds alerting and nothing
of the benchmark's own. cProfile slows pure-Python code down by about 2x, so its µs are not
the measured ones, but the shares between functions hold roughly. Two views: the functions
where the time is spent (own time), and alerting's functions with what they call
(cumulative time), each in µs per timed reading and as a share of the profiled total.
"""

from __future__ import annotations

import cProfile
import pstats
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .evaluation import CASES, PIPELINE_CASE, measure
from .fleet import FleetSpec

#: Paths that mark a function as alerting's own (the cumulative view lists only those).
_OWN = ("/alerts/",)


@dataclass
class Hotspot:
    """One function in the profile."""

    function: str
    calls: int
    own_us: float
    cumulative_us: float
    share: float


@dataclass
class Profile:
    """The two views of one profiled run, and where the raw profile was written."""

    readings: int
    total_s: float
    by_own: list[Hotspot]
    by_cumulative: list[Hotspot]
    stats_file: Path


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    parts = Path(filename).parts
    for anchor in ("alerts", "ingest", "alertsbench", "pydantic"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return f"{'/'.join(parts[i:])}:{line} {name}"
    return f"{Path(filename).name}:{line} {name}"


def profile(workdir: Path, spec: FleetSpec, *, top: int) -> Profile:
    """Profile one run of the pipeline case; the `top` functions of each view.

    Parameters
    ----------
    workdir : Path
        Where the state file and ``alerts.pstats`` go.
    spec : FleetSpec
        The fleet.
    top : int
        Rows per view.

    Returns
    -------
    Profile
        The views.
    """
    case = next(c for c in CASES if c.name == PIPELINE_CASE)
    profiler = cProfile.Profile()
    run = measure(case, workdir, spec, round_=0, profiler=profiler)
    stats_file = workdir / "alerts.pstats"
    profiler.dump_stats(stats_file)
    stats: Any = cast(Any, pstats.Stats(profiler)).stats  # {key: (cc, nc, tt, ct, callers)}
    readings = max(1, run.readings)
    # the timed call (`AlertProcessor.process`) is the outermost function: its cumulative time
    total = max((v[3] for v in stats.values()), default=0.0)

    def row(key: tuple[str, int, str], value: tuple[int, int, float, float, Any]) -> Hotspot:
        _, calls, own, cumulative, _ = value
        return Hotspot(
            _label(key),
            calls,
            own / readings * 1e6,
            cumulative / readings * 1e6,
            cumulative / total if total else 0.0,
        )

    by_own = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    own_rows = []
    for key, value in by_own:
        hotspot = row(key, value)
        hotspot.share = value[2] / total if total else 0.0
        own_rows.append(hotspot)
    alerting = [(k, v) for k, v in stats.items() if any(p in k[0] for p in _OWN)]
    by_cumulative = sorted(alerting, key=lambda kv: kv[1][3], reverse=True)[:top]
    return Profile(
        readings=run.readings,
        total_s=total,
        by_own=own_rows,
        by_cumulative=[row(k, v) for k, v in by_cumulative],
        stats_file=stats_file,
    )
