"""The tables, the goals and the JSON file."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchcommon.report import add_columns, print_goals, save_json
from rich.console import Console
from rich.table import Table

from .runs import Run, Summary, paired

#: Issue 14: CPU per reading cut by at least this share on both workloads.
GOAL_CUT = 0.30


def tables(
    console: Console, runs: list[Run], summaries: list[Summary], baseline: str | None
) -> None:
    """Every run, then the medians and, with a baseline, current / baseline."""
    table = Table(title="Runs: CPU of prepare + commit")
    add_columns(
        table,
        [
            ("workload", "left"),
            ("tree", "left"),
            ("round", "right"),
            ("readings", "right"),
            ("CPU s", "right"),
            ("µs/reading", "right"),
            ("wall µs/reading", "right"),
            ("full GCs", "right"),
            ("digest", "left"),
            ("checks", "left"),
        ],
    )
    for run in sorted(runs, key=lambda r: (r.workload, r.tree, r.round)):
        r = run.result
        table.add_row(
            run.workload,
            run.tree,
            str(run.round),
            f"{r.readings:,}",
            f"{r.cpu_s:.2f}",
            f"{r.us_per_reading:.2f}",
            f"{r.wall_s / r.readings * 1e6:.2f}",
            str(r.full_collections),
            r.digest[:12],
            "[green]ok[/]" if not r.problems else "[red]" + "; ".join(r.problems) + "[/]",
        )
    console.print(table)

    table = Table(title="Medians over the rounds")
    add_columns(
        table,
        [
            ("workload", "left"),
            ("tree", "left"),
            ("µs/reading median", "right"),
            ("rounds min-max", "right"),
            ("wall µs/reading", "right"),
            ("readings/s of CPU", "right"),
            ("vs baseline", "right"),
        ],
    )
    before = {s.workload: s.us_median for s in summaries if s.tree == baseline}
    for s in sorted(summaries, key=lambda s: s.workload):
        table.add_row(
            s.workload,
            s.tree,
            f"{s.us_median:.2f}",
            f"{s.us_min:.2f}-{s.us_max:.2f}",
            f"{s.wall_us_median:.2f}",
            f"{1e6 / s.us_median:,.0f}",
            f"{s.us_median / before[s.workload]:.2f}" if s.workload in before else "—",
        )
    console.print(table)
    if baseline is None:
        return
    table = Table(title=f"Current / {baseline}, round by round")
    add_columns(table, [("workload", "left"), ("rounds", "left"), ("median", "right")])
    for workload, ratios in sorted(paired(runs, baseline).items()):
        table.add_row(
            workload, " ".join(f"{r:.2f}" for r in ratios), f"{statistics.median(ratios):.2f}"
        )
    console.print(table)


def goals(console: Console, summaries: list[Summary], baseline: str | None) -> list[dict[str, Any]]:
    """With a baseline: the cut of CPU per reading on each workload, and identical rows."""
    if baseline is None:
        return []
    rows: list[dict[str, Any]] = []
    by = {(s.tree, s.workload): s for s in summaries}
    for workload in dict.fromkeys(s.workload for s in summaries):
        before, after = by[baseline, workload], by["current", workload]
        cut = 1.0 - after.us_median / before.us_median
        rows.append(
            {
                "goal": f"{workload}: CPU per reading cut vs {baseline}",
                "measured": cut,
                "spec": ".0%",
                "target": f"≥ {GOAL_CUT:.0%}",
                "passed": cut >= GOAL_CUT,
            }
        )
        same = len({*before.digests, *after.digests}) == 1
        rows.append(
            {
                "goal": f"{workload}: the same rows stored (digests)",
                "measured": float(same),
                "spec": ".0f",
                "target": "1 (identical)",
                "passed": same,
            }
        )
    print_goals(console, "Goals (issue 14)", rows)
    return rows


def write_json(
    path: Path,
    env: dict[str, str],
    options: dict[str, Any],
    runs: list[Run],
    summaries: list[Summary],
    goal_rows: list[dict[str, Any]],
) -> None:
    """Everything measured, as JSON."""
    save_json(
        path,
        {
            "environment": env,
            "options": options,
            "runs": [asdict(r) for r in runs],
            "summaries": [asdict(s) for s in summaries],
            "goals": goal_rows,
        },
    )
