"""The report: the per-model table, the pipeline tables, the goals, and the results as JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchcommon.report import Column, add_columns, drain_status, fmt, print_goals, save_json
from rich.console import Console
from rich.table import Table

from .cost import Cost
from .pipeline import Comparison

#: Goals from the issue, for the default profile.
GOAL_US_PER_READING = 30.0
GOAL_BYTES_PER_MODEL = 32 * 1024


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def _within(c: Cost) -> str:
    """Where a case lands against the default profile's goals (✓ or ✗ for time and size)."""
    time_ok = c.us_median <= GOAL_US_PER_READING
    size_ok = max(c.resident_bytes, c.pickled_bytes) <= GOAL_BYTES_PER_MODEL
    return (
        f"{'[green]✓[/]' if time_ok else '[red]✗[/]'} µs  "
        f"{'[green]✓[/]' if size_ok else '[red]✗[/]'} KiB"
    )


def cost_table(console: Console, costs: list[Cost]) -> None:
    """Print the per-model figures, one row per (case, metrics)."""
    if not costs:
        return
    c0 = costs[0]
    table = Table(
        title=f"One asset model: AssetModel.process (score + learn) after a warm-up of "
        f"{c0.warmup} readings; {c0.repeats} models x {c0.readings:,} readings timed; "
        f"resident = tracemalloc over {c0.memory_models} models",
    )
    columns: tuple[Column, ...] = (
        ("detector", "left"), ("metrics", "right"), ("µs/reading\nmedian", "right"),
        ("repeats\nmin-max", "right"), ("p50\nµs", "right"), ("p99\nµs", "right"),
        ("warm-up\nms", "right"), ("flagged\n%", "right"), ("pickled\nKiB", "right"),
        ("resident\nKiB", "right"), ("vs default's\ngoals", "left"),
    )  # fmt: skip
    add_columns(table, columns)
    for c in costs:
        label = f"[bold]{c.case}[/]" if c.default else c.case
        table.add_row(
            label,
            str(c.metrics),
            f"{c.us_median:.1f}",
            f"{c.us_min:.1f}-{c.us_max:.1f}",
            f"{c.us_p50:.1f}",
            f"{c.us_p99:.1f}",
            f"{c.warmup_ms:.1f}",
            f"{100 * c.flagged:.1f}",
            _kib(c.pickled_bytes),
            _kib(c.resident_bytes),
            _within(c),
        )
    console.print(table)


def pipeline_tables(console: Console, comparisons: list[Comparison]) -> None:
    """Print every drain, then on against off per workload."""
    if not comparisons:
        return
    table = Table(title="meshwatch run draining the same QoS 1 backlog, scoring off and on")
    columns: tuple[Column, ...] = (
        ("workload", "left"), ("scoring", "left"), ("round", "right"), ("msgs", "right"),
        ("readings", "right"), ("publish\nmsg/s", "right"), ("start→\ndone s", "right"),
        ("first→\nlast s", "right"), ("readings/s\nfirst→last", "right"),
        ("sub\nCPU s", "right"), ("anomaly\nrows", "right"), ("flagged", "right"),
        ("status / checks", "left"),
    )  # fmt: skip
    add_columns(table, columns)
    for comparison in comparisons:
        for run in comparison.runs:
            d = run.drain
            status = drain_status(d)
            table.add_row(
                d.workload,
                "on" if run.scoring else "off",
                str(run.round),
                f"{d.messages:,}",
                f"{d.readings:,}",
                f"{d.publish.messages / d.publish.seconds:,.0f}",
                fmt(d.total_s, ".2f"),
                fmt(d.steady_s, ".2f"),
                fmt(d.steady_rate, ",.0f"),
                fmt(d.cpu_s, ".2f"),
                fmt(run.anomaly_rows, ","),
                fmt(run.flagged, ","),
                status,
            )
    console.print(table)

    summary = Table(title="Scoring on versus off (readings/s first→last; medians over rounds)")
    for name in ("workload", "off readings/s", "on readings/s", "on / off", "µs added per reading"):
        summary.add_column(name, justify="left" if name == "workload" else "right")
    for c in comparisons:
        summary.add_row(
            c.workload,
            fmt(c.off, ",.0f"),
            fmt(c.on, ",.0f"),
            fmt(c.ratio, ".2f"),
            fmt(c.added_us, ".1f"),
        )
    console.print(summary)
    for comparison in comparisons:
        for run in comparison.runs:
            for note in run.drain.notes:
                console.print(f"[dim]{run.drain.workload} / {run.drain.subscriber}: {note}[/]")


def goals(console: Console, costs: list[Cost]) -> list[dict[str, Any]]:
    """Print the default profile's goals; return them as rows (``passed`` False on a miss)."""
    rows: list[dict[str, Any]] = []
    for c in (c for c in costs if c.default):
        checks = (
            ("µs per reading (median)", c.us_median, GOAL_US_PER_READING, "≤ 30 µs", ".1f"),
            ("resident KiB per model", c.resident_bytes / 1024, 32.0, "≤ 32 KiB", ",.1f"),
            ("pickled KiB per model", c.pickled_bytes / 1024, 32.0, "≤ 32 KiB", ",.1f"),
        )
        for what, value, limit, target, spec in checks:
            rows.append(
                {
                    "goal": f"default profile, {c.metrics} metrics: {what}",
                    "measured": value,
                    "target": target,
                    "passed": value <= limit,
                    "spec": spec,
                }
            )
    if not rows:
        return rows
    label = next(c.case for c in costs if c.default)
    print_goals(console, f"Goals of the issue for the shipped default profile: {label}", rows)
    return rows


def write_json(
    path: Path,
    environment: dict[str, str],
    costs: list[Cost],
    comparisons: list[Comparison],
    goal_rows: list[dict[str, Any]],
) -> None:
    """Write every result as one JSON object to ``path`` (its directory is created)."""
    data = {
        "environment": environment,
        "models": [asdict(c) for c in costs],
        "pipeline": [
            {
                "workload": c.workload,
                "off_readings_per_s": c.off,
                "on_readings_per_s": c.on,
                "ratio": c.ratio,
                "added_us_per_reading": c.added_us,
                "runs": [r.as_dict() for r in c.runs],
            }
            for c in comparisons
        ],
        "goals": goal_rows,
    }
    save_json(path, data)
