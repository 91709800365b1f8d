"""The command line: parse the options, run the children round by round, and report."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from importlib.metadata import version

from benchcommon.report import wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir
from benchcommon.workloads import add_workload_options

from . import child
from .report import goals, tables, write_json
from .runs import REPO, Run, Tree, Workload, extract, measure, summarise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="CPU per reading of the pipeline in process (no broker), on the ingest "
        "benchmark's single-reading and batched workloads; with --baseline, for a git ref too.",
    )
    add = parser.add_argument
    add(
        "--baseline",
        metavar="REF",
        help="also measure this git ref (extracted with git archive), e.g. main",
    )
    add("--only", choices=("single", "batched"), help="one workload only (default both)")
    add_workload_options(parser)
    add("--batch-max", type=int, default=1000, help="messages per prepare + commit (1000)")
    add("--rounds", type=int, default=3, help="measurements of each tree and workload (3)")
    add(
        "--quick",
        action="store_true",
        help="smoke run: 20,000 single and 2,000 batched messages, 1 round",
    )
    add_run_options(parser, "keep the baseline's tree, the data dirs and the children's logs here")
    add("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.batched_messages, args.rounds = 20_000, 2_000, 1
    require_positive(
        parser,
        args,
        ("messages", "batched_messages", "batch", "assets", "sites", "batch_max", "rounds"),
    )
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if every run checked out and, with a baseline, both goals passed on both
    workloads; 1 otherwise.
    """
    args = parse_args(argv)
    if args.child is not None:
        result = child.measure(child.Spec(**json.loads(args.child)))
        print(json.dumps(child.result_dict(result)))
        return 0
    console = wide_console()
    env = logged_environment(console, {"sqlite": sqlite3.sqlite_version, "river": version("river")})
    workloads = [
        w
        for w in (
            Workload("single", args.messages, 1),
            Workload("batched", args.batched_messages, args.batch),
        )
        if args.only in (None, w.name)
    ]
    began = time.monotonic()
    runs: list[Run] = []
    with work_dir(args.workdir, args.keep, "meshwatch-hotpathbench-") as workdir:
        console.log(f"work dir {workdir}")
        trees = [Tree("current", REPO)]
        if args.baseline is not None:
            trees.insert(0, extract(args.baseline, workdir / "baseline"))
        for round_ in range(1, args.rounds + 1):
            # Every other round the other tree goes first: load that drifts hits both alike.
            order = trees if round_ % 2 else trees[::-1]
            for w in workloads:
                for tree in order:
                    data_dir = workdir / f"data-{tree.label.replace('/', '_')}-{w.name}-{round_}"
                    spec = child.Spec(
                        w.name,
                        w.messages,
                        w.batch,
                        args.assets,
                        args.sites,
                        args.batch_max,
                        str(data_dir),
                    )
                    result = measure(tree, spec, workdir / "children.log")
                    console.log(
                        f"{w.name}, {tree.label}, round {round_}: "
                        f"{result.us_per_reading:.2f} µs/reading"
                        + (f" [red]{'; '.join(result.problems)}[/]" if result.problems else "")
                    )
                    runs.append(Run(tree.label, w.name, round_, result))
    console.log(f"total {time.monotonic() - began:.0f} s")
    summaries = summarise(runs)
    tables(console, runs, summaries, args.baseline)
    goal_rows = goals(console, summaries, args.baseline)
    if args.json is not None:
        options = {k: v for k, v in vars(args).items() if k not in ("child", "json", "workdir")}
        write_json(args.json, env, options, runs, summaries, goal_rows)
        console.log(f"results in {args.json}")
    clean = not any(run.result.problems for run in runs)
    return 0 if clean and all(row["passed"] for row in goal_rows) else 1
