"""The command line: parse the options, judge the parts in worker processes, report."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchcommon.report import wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from meshwatch.alarmreport import HOUR_NS, alarm_report, report_table
from meshwatch.offline import Judged
from meshwatch.runevaluation import faults_table

from . import fleet as fleets
from .report import extrapolate, goals, goals_table, timing_table, write_json
from .worker import Part, PartResult, run
from .worker import Progress as PartProgress

#: Simulated hours of a default run: a day, and one more hour, so that an alert raised in
#: the first hour that never clears is firing for more than 24 hours (stale) by the end.
DEFAULT_HOURS = 25.0
#: A full day at one reading a second a machine: what the extrapolation is for.
DAY_HOURS = 24.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="The alarm report of the large fleet over a simulated day, judged offline "
        "by the live scoring and alerting code, against issue 11's goals.",
    )
    add = parser.add_argument
    add(
        "--hours",
        type=float,
        default=DEFAULT_HOURS,
        help=f"simulated hours (default {DEFAULT_HOURS:g}: a stale alarm, firing > 24 h, can show)",
    )
    add(
        "--sites",
        type=int,
        help="judge only this many sites, those with faults first (default: all)",
    )
    add(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes, the sites split between them (default: one per CPU)",
    )
    add("--fleet", default="large", help="shipped fleet or fleet file (default large)")
    add("--config", type=Path, help="a meshwatch settings file (default: the defaults)")
    add_run_options(parser, "keep the models and alert state of each part here")
    args = parser.parse_args(argv)
    require_positive(parser, args, ["workers", *(["sites"] if args.sites is not None else [])])
    if args.hours <= 0:
        parser.error("--hours must be more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if the goals passed, 1 if one missed, 2 if a worker failed.
    """
    args = parse_args(argv)
    console = wide_console()
    env = logged_environment(console, {"river": version("river"), "numpy": version("numpy")})
    whole = fleets.load(args.fleet)
    sites = fleets.chosen_sites(whole, args.sites)
    chosen = fleets.subfleet(whole, sites)
    start = fleets.START_NS
    end = start + int(args.hours * HOUR_NS)
    console.log(
        f"fleet {args.fleet}: {len(sites)} of {len(whole.sites)} sites, "
        f"{fleets.assets(chosen):,} assets, {len(chosen.faults)} faults; {args.hours:g} simulated "
        f"hours ({fleets.readings_per_hour(chosen) * args.hours:,.0f} readings); settings: "
        f"{args.config or 'defaults'}"
    )
    began = time.perf_counter()
    with work_dir(args.workdir, args.keep, "meshwatch-alarmsbench-") as workdir:
        parts = [
            Part(i, args.fleet, names, start, end, args.config, workdir)
            for i, names in enumerate(fleets.parts(sites, args.workers))
        ]
        console.log(f"{len(parts)} worker processes; work dir {workdir}")
        results = _run_parts(parts, console, end - start)
    wall = time.perf_counter() - began
    if results is None:
        return 2
    judged = Judged()
    labels = []
    for r in results:
        judged.merge(r.judged)
        labels.extend(r.labels)
    labels.sort(key=lambda g: g.start)
    report = alarm_report(
        fleets.faults(labels, end),
        judged.alerts,
        machines=sum(r.assets for r in results),
        start=start,
        end=end,
    )
    console.print(faults_table(report.score.findings))
    console.print(report.score.line(), highlight=False)
    console.print(report_table(report))
    rows = goals(report)
    goals_table(console, rows)
    timing_table(console, results, wall)
    full = fleets.readings_per_hour(whole) * DAY_HOURS
    console.print(
        f"{judged.readings:,} readings in {wall:,.0f} s on {len(parts)} processes: at this "
        f"pace the whole fleet ({fleets.assets(whole):,} assets) for {DAY_HOURS:g} simulated "
        f"hours ({full:,.0f} readings) would take ~"
        f"{extrapolate(results, full, args.workers) / 3600:,.1f} h on {args.workers} processes "
        f"(~{extrapolate(results, full, args.workers, cpu=True) / 3600:,.1f} h by CPU time)"
    )
    if args.json is not None:
        settings: dict[str, Any] = {
            "fleet": args.fleet,
            "sites": sites,
            "hours": args.hours,
            "workers": args.workers,
            "config": None if args.config is None else str(args.config),
        }
        write_json(args.json, env, settings, report, rows, results, wall)
    return 0 if all(g.passed for g in rows if g.gate) else 1


def _run_parts(parts: list[Part], console: Console, span: int) -> list[PartResult] | None:
    """Run each part in a process of its own; the results, or None when one failed."""
    # spawn, not fork: the parent holds threads (rich's live display) and open files.
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(target=run, args=(p, messages), name=f"alarmsbench-{p.index}", daemon=True)
        for p in parts
    ]
    for process in processes:
        process.start()
    results: dict[int, PartResult] = {}
    shown = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[hours]:.1f} h"),
        TextColumn("{task.fields[readings]:>12,} readings"),
        TextColumn("{task.fields[alerts]:>8,} alert msgs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    tasks = {
        p.index: shown.add_task(
            f"part {p.index} ({len(p.sites)} sites)", total=span, hours=0.0, readings=0, alerts=0
        )
        for p in parts
    }
    logged_hour = 0
    try:
        with shown:
            while len(results) < len(parts):
                try:
                    message = messages.get(timeout=1.0)
                except queue.Empty:
                    _check_alive(processes, results)
                    continue
                if message[0] == "progress":
                    p: PartProgress = message[1]
                    shown.update(
                        tasks[p.index],
                        completed=p.done,
                        hours=p.done / HOUR_NS,
                        readings=p.readings,
                        alerts=p.alerts,
                    )
                    slowest = min(t.completed for t in shown.tasks) / HOUR_NS
                    if not console.is_terminal and int(slowest) > logged_hour:
                        logged_hour = int(slowest)
                        console.log(f"every part has judged {logged_hour} simulated hours")
                elif message[0] == "done":
                    result: PartResult = message[1]
                    results[result.index] = result
                    console.log(
                        f"part {result.index} done: {result.judged.readings:,} readings in "
                        f"{result.wall_s:,.1f} s"
                    )
                else:
                    console.print(f"[red]part {message[1]} failed:[/]\n{message[2]}")
                    return None
    except (KeyboardInterrupt, RuntimeError) as exc:
        console.print(f"[red]stopped: {exc or 'Ctrl-C'}[/]")
        return None
    finally:
        for process in processes:
            if process.is_alive() and len(results) < len(parts):
                process.terminate()
            process.join(10)
    return [results[p.index] for p in parts]


def _check_alive(processes: list[Any], results: dict[int, PartResult]) -> None:
    """Raise RuntimeError when a worker ended without a result (killed, out of memory)."""
    for index, process in enumerate(processes):
        if index not in results and not process.is_alive() and process.exitcode not in (0, None):
            raise RuntimeError(f"worker {index} ended with exit code {process.exitcode}")
