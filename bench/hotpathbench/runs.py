"""The trees measured, the child processes, and the medians over rounds."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .child import Result, Spec

#: The checkout this benchmark belongs to: the current tree.
REPO = Path(__file__).resolve().parents[2]
#: The entry script, run again as the child.
ENTRY = REPO / "bench" / "hotpath_bench.py"


@dataclass(frozen=True)
class Tree:
    """A tree of meshwatch to measure: its label and the directory put on ``PYTHONPATH``."""

    label: str
    root: Path


@dataclass(frozen=True)
class Workload:
    """One of the two workloads: its name, messages and readings per message."""

    name: str
    messages: int
    batch: int


@dataclass
class Run:
    """One child's measurement of one tree on one workload, in one round."""

    tree: str
    workload: str
    round: int
    result: Result


@dataclass
class Summary:
    """One tree on one workload over the rounds: the median µs of CPU per reading."""

    tree: str
    workload: str
    readings: int
    us_median: float
    us_min: float
    us_max: float
    wall_us_median: float
    full_collections: int
    digests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def extract(ref: str, into: Path) -> Tree:
    """The tree of git `ref`, written into `into` by ``git archive`` (the repo is untouched)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return Tree(ref, into)


def measure(tree: Tree, spec: Spec, log: Path) -> Result:
    """Run one child on `tree`; its stderr (the pipeline's log) goes to `log`."""
    env = {**os.environ, "PYTHONPATH": str(tree.root)}
    with log.open("a", encoding="utf-8") as err:
        done = subprocess.run(
            [sys.executable, str(ENTRY), "--child", json.dumps(asdict(spec))],
            env=env,
            cwd=tree.root,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the child on {tree.label} exited {done.returncode}: see {log}")
    result = Result(**json.loads(done.stdout.strip().splitlines()[-1]))
    if Path(result.module) != tree.root.resolve():
        raise RuntimeError(f"the child on {tree.label} imported meshwatch from {result.module}")
    return result


def summarise(runs: list[Run]) -> list[Summary]:
    """Medians per (tree, workload), in the order they were first run."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for run in runs:
        groups.setdefault((run.tree, run.workload), []).append(run.result)
    out = []
    for (tree, workload), results in groups.items():
        us = [r.us_per_reading for r in results]
        out.append(
            Summary(
                tree=tree,
                workload=workload,
                readings=results[0].readings,
                us_median=statistics.median(us),
                us_min=min(us),
                us_max=max(us),
                wall_us_median=statistics.median(r.wall_s / r.readings * 1e6 for r in results),
                full_collections=round(statistics.median(r.full_collections for r in results)),
                digests=sorted({r.digest for r in results}),
                problems=sorted({p for r in results for p in r.problems}),
            )
        )
    return out


def paired(runs: list[Run], baseline: str) -> dict[str, list[float]]:
    """Per workload, current / `baseline` CPU per reading of each round.

    The two trees of a round run one after the other, so the ratio of a round is less
    exposed to load that drifts over the run than the ratio of the medians.
    """
    us = {(r.tree, r.workload, r.round): r.result.us_per_reading for r in runs}
    out: dict[str, list[float]] = {}
    for (tree, workload, round_), value in us.items():
        if tree == "current" and (baseline, workload, round_) in us:
            out.setdefault(workload, []).append(value / us[baseline, workload, round_])
    return out
