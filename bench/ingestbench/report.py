"""The report: the results table, the goals from the issue, and the results as JSON.

Both goals use the first→last rate (readings handled from the first message or row seen to
the last), so that Python start-up is factored out for both subscribers.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from benchcommon.base import MESHWATCH, Drain
from benchcommon.report import Column, add_columns, drain_status, fmt, save_json
from rich.console import Console
from rich.table import Table

from .bare import BARE

#: Goals from the issue.
GOAL_SINGLE_RATIO = 0.8
GOAL_BATCHED_READINGS_PER_S = 50_000.0


def _ratio(mesh: Drain, bare: Drain) -> float | None:
    m, b = mesh.steady_rate, bare.steady_rate
    return None if m is None or not b else m / b


def report(console: Console, drains: list[Drain]) -> bool:
    """Print the results and the goals; return whether every goal passed and checks are clean.

    Parameters
    ----------
    console : Console
        Where to print.
    drains : list of Drain
        Results, bare and meshwatch for each workload.

    Returns
    -------
    bool
        True if all goals passed and every meshwatch run stored exactly what was published.
    """
    table = Table(title="Draining a QoS 1 backlog (subscriber offline while publishing)")
    columns: tuple[Column, ...] = (
        ("workload", "left"), ("subscriber", "left"), ("msgs", "right"),
        ("readings", "right"), ("publish\nmsg/s", "right"), ("start→\ndone s", "right"),
        ("readings/s\nfrom start", "right"), ("first→\nlast s", "right"),
        ("readings/s\nfirst→last", "right"), ("sub\nCPU s", "right"),
        ("broker\nCPU s", "right"), ("status / checks", "left"),
    )  # fmt: skip
    add_columns(table, columns)
    for d in drains:
        status = "ok" if d.subscriber == BARE and d.status == "ok" else drain_status(d)
        table.add_row(
            d.workload,
            d.subscriber,
            f"{d.messages:,}",
            f"{d.readings:,}",
            f"{d.publish.messages / d.publish.seconds:,.0f}",
            fmt(d.total_s, ".2f"),
            fmt(d.total_rate, ",.0f"),
            fmt(d.steady_s, ".2f"),
            fmt(d.steady_rate, ",.0f"),
            fmt(d.cpu_s, ".2f"),
            fmt(d.broker_cpu_s, ".2f"),
            status,
        )
    console.print(table)

    goals = Table(title="Goals (rates from first to last message/row: Python start-up excluded)")
    for name in ("goal", "measured", "target", "result"):
        goals.add_column(name)
    ok = True

    def verdict(value: float | None, target: float, *runs: Drain) -> str:
        nonlocal ok
        if value is not None and value >= target:
            return "[green]PASS[/]"
        if value is None and all(r.status == "ok" and r.steady_s == 0 for r in runs):
            return "n/a (drained within one poll: use more messages)"
        ok = False
        return "[red]MISS[/]"

    by = {(d.workload, d.subscriber): d for d in drains}
    for workload in ("single", "batched"):
        mesh, bare = by.get((workload, MESHWATCH)), by.get((workload, BARE))
        if mesh is None or bare is None:
            continue
        ratio = _ratio(mesh, bare)
        if workload == "single":
            goals.add_row(
                "single-reading: meshwatch / bare readings/s",
                fmt(ratio, ".2f"),
                f"≥ {GOAL_SINGLE_RATIO}",
                verdict(ratio, GOAL_SINGLE_RATIO, mesh),
            )
        else:
            rate = mesh.steady_rate
            goals.add_row(
                "batched: meshwatch readings/s",
                fmt(rate, ",.0f"),
                f"≥ {GOAL_BATCHED_READINGS_PER_S:,.0f}",
                verdict(rate, GOAL_BATCHED_READINGS_PER_S, mesh),
            )
            goals.add_row("batched: meshwatch / bare readings/s (info)", fmt(ratio, ".2f"), "", "")
        ok = ok and mesh.status == "ok" and not mesh.checks
    console.print(goals)
    for d in drains:
        for note in d.notes:
            console.print(f"[dim]{d.workload} / {d.subscriber}: {note}[/]")
    return ok


def write_json(path: Path, drains: list[Drain]) -> None:
    """Write the results, rates included, as a JSON list to ``path``.

    Parameters
    ----------
    path : Path
        The file; its directory is created if needed.
    drains : list of Drain
        The results.
    """
    save_json(
        path,
        [{**asdict(d), "total_rate": d.total_rate, "steady_rate": d.steady_rate} for d in drains],
    )
