"""The report: every run, the summary against the bare baseline, the saturation verdicts, JSON.

The pipeline's drain rates are those the ingest benchmark measured for ``meshwatch run``
(embedded SQLite store, scoring and alerting on, 50 assets): ``bench/README.md``, section of
``alerts_bench.py``, "End to end" table (2026-11-25, 21:50 UTC).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchcommon.report import add_columns, fmt, save_json
from rich.console import Console
from rich.table import Table

from .measure import BARE, GENERATION, PUBLISH, SIMULATOR, Result, Summary

#: ``meshwatch run`` draining single-reading messages, readings/s (bench/README.md,
#: "End to end": 20,204 readings/s, alerts on).
PIPELINE_SINGLE = 20_204.0
#: ``meshwatch run`` draining 50-reading messages, readings/s (bench/README.md, "End to
#: end": 51,920 readings/s, alerts on). Batches of 10 were not measured; they are held to this
#: rate, the higher one, so a "yes" for them is safe.
PIPELINE_BATCHED = 51_920.0
#: The goal: the simulator, in its best shape (batches of 50), keeps up with the pipeline.
GOAL_BATCH = 50


def pipeline_rate(part: str, batch: int) -> tuple[float, str]:
    """The pipeline's drain rate that readings in messages of ``batch`` are held to.

    Generation alone is held to the higher rate: it is the ceiling of every mode.
    """
    if batch == 1 and part != GENERATION:
        return PIPELINE_SINGLE, "single-reading msgs"
    return PIPELINE_BATCHED, "50-reading msgs"


def runs_table(console: Console, results: list[Result]) -> None:
    """Every measurement, round by round."""
    table = Table(title="Every measurement (subscriber draining the broker all along)")
    add_columns(
        table,
        (
            ("part", "left"), ("mode", "left"), ("batch", "right"), ("round", "right"),
            ("readings", "right"), ("messages", "right"), ("seconds", "right"),
            ("readings/s", "right"), ("messages/s", "right"), ("sub behind s", "right"),
            ("checks", "left"),
        ),
    )  # fmt: skip
    for r in results:
        table.add_row(
            r.part,
            r.mode,
            str(r.batch),
            str(r.round),
            f"{r.readings:,}",
            f"{r.messages:,}" if r.messages else "—",
            f"{r.seconds:.2f}",
            f"{r.readings_per_s:,.0f}",
            f"{r.messages_per_s:,.0f}" if r.messages else "—",
            fmt(r.behind_s, ".2f"),
            "[red]" + "; ".join(r.problems) + "[/]" if r.problems else "[green]ok[/]",
        )
    console.print(table)


def _bare_of(summaries: list[Summary], s: Summary) -> Summary | None:
    return next(
        (b for b in summaries if b.mode == BARE and b.part == s.part and b.batch == s.batch), None
    )


def summary_table(console: Console, summaries: list[Summary]) -> None:
    """Medians over the rounds, each against the bare baseline of its part and batch."""
    table = Table(title="Medians over the rounds; ratio = readings/s ÷ bare paho's")
    add_columns(
        table,
        (
            ("part", "left"), ("mode", "left"), ("batch", "right"), ("rounds", "right"),
            ("readings/s\nmedian", "right"), ("readings/s\nmin-max", "right"),
            ("messages/s\nmedian", "right"), ("vs bare\npaho", "right"),
        ),
    )  # fmt: skip
    for s in summaries:
        b = _bare_of(summaries, s)
        ratio = None if b is None or s.mode == BARE else s.readings_per_s / b.readings_per_s
        table.add_row(
            s.part,
            s.mode,
            str(s.batch),
            str(s.rounds),
            f"{s.readings_per_s:,.0f}",
            f"{s.readings_per_s_min:,.0f}-{s.readings_per_s_max:,.0f}",
            f"{s.messages_per_s:,.0f}" if s.part != GENERATION else "—",
            "1.00" if s.mode == BARE else fmt(ratio, ".2f"),
        )
    console.print(table)


def saturation(console: Console, summaries: list[Summary], assets: int) -> list[dict[str, Any]]:
    """Whether each mode outpaces the pipeline's drain rate; return the rows (and the goal's).

    ``assets`` readings a simulated second is the large fleet's own rate, so a mode that does
    ``r`` readings/s can run the fleet at up to ``r / assets`` times real time, and the
    pipeline needs ``pipeline / assets``.
    """
    rows: list[dict[str, Any]] = []
    for s in summaries:
        if s.mode == BARE:
            continue
        rate, against = pipeline_rate(s.part, s.batch)
        rows.append(
            {
                "part": s.part,
                "mode": s.mode,
                "batch": s.batch,
                "readings_per_s": s.readings_per_s,
                "pipeline": against,
                "pipeline_readings_per_s": rate,
                "ratio": s.readings_per_s / rate,
                "max_speed": s.readings_per_s / assets,
                "speed_needed": rate / assets,
                "saturates": s.readings_per_s >= rate,
                "goal": s.part == PUBLISH and s.mode == SIMULATOR and s.batch == GOAL_BATCH,
            }
        )
    table = Table(
        title=f"Can it saturate the pipeline? (the large fleet makes {assets:,} readings a "
        "simulated second; pipeline rates from the ingest benchmark, bench/README.md)"
    )
    add_columns(
        table,
        (
            ("part", "left"), ("mode", "left"), ("batch", "right"),
            ("readings/s", "right"), ("pipeline drains", "right"), ("ratio", "right"),
            ("fleet speed\nit reaches", "right"), ("speed the\npipeline needs", "right"),
            ("saturates?", "left"),
        ),
    )  # fmt: skip
    for row in rows:
        verdict = "[green]yes[/]" if row["saturates"] else "[red]no[/]"
        table.add_row(
            row["part"],
            row["mode"] + (" (goal)" if row["goal"] else ""),
            str(row["batch"]),
            f"{row['readings_per_s']:,.0f}",
            f"{row['pipeline_readings_per_s']:,.0f} ({row['pipeline']})",
            f"{row['ratio']:.2f}",
            f"{row['max_speed']:.1f}x",
            f"{row['speed_needed']:.1f}x",
            verdict,
        )
    console.print(table)
    return rows


def write_json(
    path: Path,
    environment: dict[str, str],
    settings: dict[str, Any],
    results: list[Result],
    summaries: list[Summary],
    verdicts: list[dict[str, Any]],
) -> None:
    """Write every result as one JSON object to ``path`` (its directory is created)."""
    data = {
        "environment": environment,
        "settings": settings,
        "pipeline": {"single": PIPELINE_SINGLE, "batched": PIPELINE_BATCHED},
        "runs": [r.as_dict() for r in results],
        "summary": [asdict(s) for s in summaries],
        "saturation": verdicts,
    }
    save_json(path, data)
