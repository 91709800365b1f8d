"""The command line: parse the options, start the broker, run every measurement, report."""

from __future__ import annotations

import argparse
import time
from importlib.metadata import version

from benchcommon.report import wide_console
from benchcommon.runs import add_run_options, logged_environment, require_positive, work_dir

from meshwatch.localservers import Mosquitto, free_port

from . import measure
from .measure import PUBLISH, REPLAY, REPLAYER_WINDOW, SIMULATOR_WINDOW, Result
from .report import GOAL_BATCH, runs_table, saturation, summary_table, write_json
from .workload import Workload, large_fleet, write_recording

#: Batch sizes of the publishing part.
BATCHES = (1, 10, 50)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="The simulators as a load generator: readings/s the large fleet publishes "
        "(batches of 1, 10, 50) and a recording replays, next to bare paho, and whether that "
        "saturates the pipeline.",
    )
    add = parser.add_argument
    add(
        "--readings",
        type=int,
        default=100_000,
        help="readings of generation, batch 1 and replay (default 100000)",
    )
    add(
        "--batched-readings",
        type=int,
        default=200_000,
        help="readings of batches 10 and 50 (default 200000: 100 s of the fleet, so every "
        "asset fills 2 batches of 50)",
    )
    add("--rounds", type=int, default=2, help="rounds of every measurement (default 2)")
    add("--only", choices=("generation", "publish", "replay"), help="one part only")
    add(
        "--quick",
        action="store_true",
        help="smoke run: 10,000 readings, 100,000 batched (each asset fills one batch of 50), "
        "1 round",
    )
    add_run_options(parser, "keep the broker and the recording here")
    args = parser.parse_args(argv)
    if args.quick:
        args.readings, args.batched_readings, args.rounds = 10_000, 100_000, 1
    require_positive(parser, args, ("readings", "batched_readings", "rounds"))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if every subscriber count and summary held and the simulator with batches of
    `GOAL_BATCH` outpaced the pipeline (when measured), 1 otherwise.
    """
    args = parse_args(argv)
    console = wide_console()
    env = logged_environment(
        console, {"paho-mqtt": version("paho-mqtt"), "orjson": version("orjson")}
    )
    began = time.monotonic()
    t0 = time.monotonic()
    everything = Workload.make(large_fleet(), max(args.readings, args.batched_readings))
    workloads = {
        batch: everything.head(args.readings if batch == 1 else args.batched_readings)
        for batch in BATCHES
    }
    workload = workloads[1]
    messages = {batch: w.messages(batch) for batch, w in workloads.items()}
    recorded = workload.recorded()
    del everything
    console.log(
        f"large fleet: {workload.assets:,} assets; "
        + ", ".join(
            f"{len(workloads[b].readings):,} readings in {len(m):,} messages of {b}"
            for b, m in messages.items()
        )
        + f"; built in {time.monotonic() - t0:.1f} s"
    )
    results: list[Result] = []

    def logged(result: Result) -> None:
        console.log(
            f"{result.part} / {result.mode} / batch {result.batch} / round {result.round}: "
            f"{result.readings_per_s:,.0f} readings/s"
            + (f", {result.messages_per_s:,.0f} messages/s" if result.messages else "")
            + (f" [red]{'; '.join(result.problems)}[/]" if result.problems else "")
        )
        results.append(result)

    with work_dir(args.workdir, args.keep, "meshwatch-simulatorsbench-") as workdir:
        console.log(f"work dir {workdir}")
        recording = workdir / "replay.jsonl.gz"
        if args.only in (None, "replay"):
            t0 = time.monotonic()
            size = write_recording(recording, recorded)
            console.log(
                f"recording: {len(recorded):,} messages, {size / 1e6:.1f} MB, written in "
                f"{time.monotonic() - t0:.1f} s"
            )
        with Mosquitto(workdir / "mosquitto", free_port()) as broker:
            host, port = broker.host, broker.port
            for round_ in range(1, args.rounds + 1):
                if args.only in (None, "generation"):
                    for encode in (False, True):
                        logged(measure.generation(workload, round_, encode=encode))
                if args.only in (None, "publish"):
                    for batch in BATCHES:
                        n = len(workloads[batch].readings)
                        logged(
                            measure.simulator(
                                host, port, workloads[batch], batch, len(messages[batch]), round_
                            )
                        )
                        logged(
                            measure.baseline(
                                host,
                                port,
                                PUBLISH,
                                messages[batch],
                                n,
                                batch,
                                SIMULATOR_WINDOW,
                                round_,
                            )
                        )
                if args.only in (None, "replay"):
                    logged(measure.replayer(host, port, recording, len(recorded), round_))
                    logged(measure.replayer(host, port, recorded, len(recorded), round_))
                    logged(
                        measure.baseline(
                            host,
                            port,
                            REPLAY,
                            messages[1],
                            len(recorded),
                            1,
                            REPLAYER_WINDOW,
                            round_,
                        )
                    )
    console.log(f"total {time.monotonic() - began:.0f} s")

    summaries = measure.summarise(results)
    runs_table(console, results)
    summary_table(console, summaries)
    verdicts = saturation(console, summaries, workload.assets)
    problems = [p for r in results for p in r.problems]
    for problem in problems:
        console.print(f"[red]check: {problem}[/]")
    goal = [v for v in verdicts if v["goal"]]
    for v in goal:
        console.print(
            f"goal: the simulator, batches of {GOAL_BATCH}, {v['readings_per_s']:,.0f} "
            f"readings/s ≥ the pipeline's {v['pipeline_readings_per_s']:,.0f}: "
            + ("[green]PASS[/]" if v["saturates"] else "[red]MISS[/]")
        )
    if args.json is not None:
        settings = {
            "readings": args.readings,
            "batched_readings": args.batched_readings,
            "rounds": args.rounds,
            "batches": list(BATCHES),
        }
        write_json(args.json, env, settings, results, summaries, verdicts)
    return 0 if not problems and all(v["saturates"] for v in goal) else 1
