"""The command line: parse the options, measure evaluation, then delivery, and report."""

from __future__ import annotations

import argparse
import sqlite3
import time
from importlib.metadata import version

from benchcommon.report import wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir

from . import delivery, evaluation
from .endpoint import serve
from .fleet import FAULT_EVERY, FleetSpec
from .hotspots import Profile, profile
from .report import delivery_tables, evaluation_tables, goals, profile_tables, write_json

#: The pipeline's readings/s with scoring before alerting, from the ingest benchmark
#: (batched messages, ``meshwatch run`` with scoring on, as the brief of this benchmark gives
#: it: ~57,000 readings/s, 17.5 µs a reading).
PIPELINE_RATE = 57_000.0
#: The default fleet (2,000 assets at 50 sites, 240 s, batches of 1,000).
_FLEET = FleetSpec()
#: Above this many µs per reading for the pipeline case, ``--profile auto`` profiles it.
PROFILE_ABOVE_US = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="Cost of alerting: rule evaluation and routing per reading (20 rules, "
        "10 routes), and webhook notifications/s from the durable outbox.",
    )
    add = parser.add_argument
    add("--only", choices=("evaluation", "delivery"), help="run one part only (default both)")
    add("--assets", type=int, default=_FLEET.assets, help="assets in the fleet (2000)")
    add("--sites", type=int, default=_FLEET.sites, help="sites (default 50)")
    add("--batch", type=int, default=_FLEET.batch, help="readings per batch (1000)")
    add(
        "--seconds",
        type=int,
        default=_FLEET.seconds,
        help="event seconds per run, each asset reporting once a second (default 240; the "
        f"first {evaluation.WARMUP_S} are not timed, nor the recovery after them)",
    )
    add("--rounds", type=int, default=3, help="runs of each evaluation case (default 3)")
    add("--seed", type=int, default=_FLEET.seed, help="seed of the fleet")
    add(
        "--fault-every",
        type=int,
        default=FAULT_EVERY,
        help=f"a fault starts on one reading in this many (default {FAULT_EVERY:,}: ~2.5 %% "
        "of the fleet failing at a time)",
    )
    add("--notifications", type=int, default=2000, help="notifications per delivery (2000)")
    add("--delivery-rounds", type=int, default=3, help="rounds of the delivery part (3)")
    add(
        "--pipeline-rate",
        type=float,
        default=PIPELINE_RATE,
        help=f"the pipeline's readings/s with scoring, the budget alerting is compared with "
        f"(default {PIPELINE_RATE:,.0f})",
    )
    add(
        "--profile",
        choices=("auto", "on", "off"),
        default="auto",
        help=f"cProfile one extra run of {evaluation.PIPELINE_CASE}: auto does when it costs "
        f"over {PROFILE_ABOVE_US} µs/reading (default auto)",
    )
    add("--profile-top", type=int, default=15, help="rows of each profile view (15)")
    add(
        "--quick",
        action="store_true",
        help="smoke run: 40 s of event time (20 timed) and the recovery, 1 round; 300 "
        "notifications, 1 round",
    )
    add_run_options(parser, "keep the state files and the profile here")
    add("--endpoint-child", action="store_true", help=argparse.SUPPRESS)
    add("--endpoint-secret", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = evaluation.WARMUP_S + 20, 1
        args.notifications, args.delivery_rounds = 300, 1
    require_positive(
        parser,
        args,
        (
            "assets",
            "sites",
            "batch",
            "rounds",
            "notifications",
            "delivery_rounds",
            "profile_top",
            "fault_every",
        ),
    )
    if args.seconds <= evaluation.WARMUP_S:
        parser.error(f"--seconds must be above the {evaluation.WARMUP_S} s of warm-up")
    if args.pipeline_rate <= 0:
        parser.error("--pipeline-rate must be above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if the goal passed and every run checked out, 1 otherwise.
    """
    args = parse_args(argv)
    if args.endpoint_child:
        serve(args.endpoint_secret)
        return 0
    console = wide_console()
    env = logged_environment(
        console,
        {
            "sqlite": sqlite3.sqlite_version,
            "httpx": version("httpx"),
            "pydantic": version("pydantic"),
        },
    )
    began = time.monotonic()
    fleet = FleetSpec(
        assets=args.assets,
        sites=args.sites,
        seconds=args.seconds,
        batch=args.batch,
        seed=args.seed,
        fault_every=args.fault_every,
    )

    runs: list[evaluation.Run] = []
    deliveries: list[delivery.Delivery] = []
    found: Profile | None = None
    with work_dir(args.workdir, args.keep, "meshwatch-alertsbench-") as workdir:
        console.log(f"work dir {workdir}")
        if args.only in (None, "evaluation"):
            for round_ in range(1, args.rounds + 1):
                for case in evaluation.CASES:
                    t0 = time.monotonic()
                    run = evaluation.measure(case, workdir, fleet, round_=round_)
                    console.log(
                        f"{case.name}, round {round_}: {run.us_per_reading:.2f} µs/reading "
                        f"({time.monotonic() - t0:.1f} s)"
                    )
                    runs.append(run)
            pipeline_us = next(
                (
                    s.us_median
                    for s in evaluation.summarise(runs)
                    if s.case == evaluation.PIPELINE_CASE
                ),
                0.0,
            )
            if args.profile == "on" or (args.profile == "auto" and pipeline_us > PROFILE_ABOVE_US):
                console.log(f"profiling {evaluation.PIPELINE_CASE} ({pipeline_us:.2f} µs/reading)")
                found = profile(workdir, fleet, top=args.profile_top)
        if args.only in (None, "delivery"):

            def logged(d: delivery.Delivery) -> None:
                console.log(
                    f"{d.method}, round {d.round}: {d.per_s:,.0f} notifications/s"
                    + (f" [red]{'; '.join(d.problems)}[/]" if d.problems else "")
                )

            deliveries = delivery.run(args.notifications, args.delivery_rounds, workdir, logged)
    console.log(f"total {time.monotonic() - began:.0f} s")

    summaries = evaluation.summarise(runs)
    evaluation_tables(console, runs, summaries, args.pipeline_rate)
    problems = evaluation.check(runs)
    for problem in problems:
        console.print(f"[red]check: {problem}[/]")
    delivery_summaries = delivery.summarise(deliveries) if deliveries else []
    delivery_tables(console, deliveries, delivery_summaries)
    goal_rows = goals(console, summaries, args.pipeline_rate)
    profile_tables(console, found)
    if args.json is not None:
        write_json(
            args.json,
            env,
            fleet,
            runs,
            summaries,
            deliveries,
            delivery_summaries,
            goal_rows,
            found,
        )
    clean = not problems and not any(d.problems for d in deliveries)
    return 0 if clean and all(row["passed"] for row in goal_rows) else 1
