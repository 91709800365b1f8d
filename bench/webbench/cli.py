"""The command line: parse the options, run the four measurements, report against the goals."""

from __future__ import annotations

import argparse
from importlib.metadata import version
from typing import Any

from benchcommon.report import print_goals, save_json, wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir

from meshwatch.localservers import Mosquitto

from . import measure
from .fleet import ASSETS_PER_SITE, HOURS, SITES

#: Issue 13's goals.
FLEET_PAGE_S = 0.200
ASSET_PAGE_S = 0.300
LIVE_UPDATE_S = 2.0
MEMORY_MIB = 150.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="The web console against issue 13's goals: fleet and asset page render "
        "times, live-update latency, memory with the large fleet.",
    )
    add = parser.add_argument
    add("--repeats", type=int, default=20, help="GETs timed per page (default 20)")
    add("--changes", type=int, default=20, help="health changes timed on /events (default 20)")
    add("--quick", action="store_true", help="a smoke run: 3 repeats, 3 changes")
    add_run_options(parser, "keep the data dirs and the broker's files here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.changes = 3, 3
    require_positive(parser, args, ["repeats", "changes"])
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); 0 if every goal passed, else 1."""
    args = parse_args(argv)
    console = wide_console()
    env = logged_environment(
        console, {"starlette": version("starlette"), "uvicorn": version("uvicorn")}
    )
    with work_dir(args.workdir, args.keep, "meshwatch-webbench-") as workdir:
        console.log(f"fleet page: {SITES * ASSETS_PER_SITE:,} assets at {SITES} sites")
        fleet = measure.fleet_page(workdir, args.repeats)
        console.log(f"asset page: {HOURS} h of 1 Hz data")
        asset, rows = measure.asset_page(workdir, args.repeats)
        broker = Mosquitto(workdir / "broker")
        broker.start()
        try:
            console.log("live update: health changes to /events")
            live = measure.live_update(broker, workdir, args.changes)
            console.log("memory: meshwatch web with the large fleet")
            rss, peak = measure.memory(broker, workdir, args.repeats)
        finally:
            broker.stop()
    goals = [
        _goal("fleet page, worst of repeats", fleet.worst, FLEET_PAGE_S, "ms"),
        _goal("asset page, worst of repeats", asset.worst, ASSET_PAGE_S, "ms"),
        _goal("live update, worst of changes", live.worst, LIVE_UPDATE_S, "ms"),
        _goal("memory of meshwatch web (RSS)", rss, MEMORY_MIB, "MiB"),
    ]
    print_goals(console, "issue 13's goals", goals)
    console.print(
        f"medians: fleet page {fleet.median * 1e3:.0f} ms, asset page {asset.median * 1e3:.0f} "
        f"ms ({rows:,} rows in the store), live update {live.median * 1e3:.0f} ms; "
        f"peak RSS {peak:.0f} MiB"
    )
    if args.json is not None:
        save_json(
            args.json,
            {
                "environment": env,
                "settings": {"repeats": args.repeats, "changes": args.changes},
                "goals": goals,
                "samples": {
                    "fleet_page_s": fleet.samples,
                    "asset_page_s": asset.samples,
                    "live_update_s": live.samples,
                },
                "peak_rss_mib": peak,
            },
        )
    return 0 if all(r["passed"] for r in goals) else 1


def _goal(name: str, measured: float, target: float, unit: str) -> dict[str, Any]:
    """One row of the goals table (seconds shown in ms)."""
    scale = 1e3 if unit == "ms" else 1.0
    shown = f"< {target * scale:g} {unit}"
    return {
        "goal": name,
        "measured": measured * scale,
        "spec": ",.0f" if unit == "MiB" else ",.1f",
        "target": shown,
        "passed": measured < target,
    }
