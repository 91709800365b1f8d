"""The command line: parse the options, measure the models, then the pipeline, and report."""

from __future__ import annotations

import argparse
import time
from importlib.metadata import version

from benchcommon.report import wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir
from benchcommon.workloads import add_workload_options

from .cases import make_cases
from .cost import Cost, measure
from .pipeline import Comparison, compare
from .report import cost_table, goals, pipeline_tables, write_json

#: Metrics per reading of the per-model measurements.
WIDTHS = (4, 8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="Cost of one asset model per detector type (µs per reading, warm-up, "
        "pickled and resident size), and meshwatch run's readings/s with scoring on and off.",
    )
    add = parser.add_argument
    add("--only", choices=("models", "pipeline"), help="run one part only (default both)")
    add("--repeats", type=int, default=5, help="fresh models timed per case (default 5)")
    add("--readings", type=int, default=5000, help="readings timed per model (default 5000)")
    add("--memory-models", type=int, default=200, help="models built under tracemalloc (200)")
    add("--seed", type=int, default=20261125, help="seed of the synthetic readings")
    add_workload_options(parser)
    add("--rounds", type=int, default=1, help="drains of each workload, scoring off and on (1)")
    add(
        "--quick",
        action="store_true",
        help="smoke run: 2 models x 500 readings, 20 memory models, 5,000 single and 500 "
        "batched messages",
    )
    add_run_options(parser, "keep broker, data and logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.readings, args.memory_models = 2, 500, 20
        args.messages, args.batched_messages = 5_000, 500
    require_positive(
        parser,
        args,
        (
            "repeats",
            "readings",
            "memory_models",
            "messages",
            "batched_messages",
            "batch",
            "assets",
            "sites",
            "rounds",
        ),
    )
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if every goal passed and every pipeline run checked out, 1 otherwise.
    """
    args = parse_args(argv)
    console = wide_console()
    env = logged_environment(console, {"river": version("river"), "numpy": version("numpy")})
    began = time.monotonic()

    costs: list[Cost] = []
    if args.only in (None, "models"):
        for case in make_cases():
            for width in WIDTHS:
                t0 = time.monotonic()
                cost = measure(
                    case,
                    width,
                    repeats=args.repeats,
                    timed=args.readings,
                    memory_models=args.memory_models,
                    seed=args.seed,
                )
                console.log(
                    f"{case.label}, {width} metrics: {cost.us_median:.1f} µs/reading, "
                    f"{cost.resident_bytes / 1024:,.1f} KiB resident "
                    f"({time.monotonic() - t0:.1f} s)"
                )
                costs.append(cost)

    comparisons: list[Comparison] = []
    if args.only in (None, "pipeline"):
        plan = [("single", args.messages, 1), ("batched", args.batched_messages, args.batch)]
        with work_dir(args.workdir, args.keep, "meshwatch-modelsbench-") as workdir:
            console.log(f"work dir {workdir}")
            comparisons = compare(
                console, workdir, plan, assets=args.assets, sites=args.sites, rounds=args.rounds
            )
    console.log(f"total {time.monotonic() - began:.0f} s")

    cost_table(console, costs)
    pipeline_tables(console, comparisons)
    goal_rows = goals(console, costs)
    if args.json is not None:
        write_json(args.json, env, costs, comparisons, goal_rows)
    exact = all(r.drain.status == "ok" and not r.drain.checks for c in comparisons for r in c.runs)
    return 0 if exact and all(row["passed"] for row in goal_rows) else 1
