"""The command line: parse the options, start the broker, run every drain, report.

Also the entry of the bare subscriber's child process (the hidden ``--bare-child``), so that
the child pays the same start-up as the script.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

from benchcommon.base import MESHWATCH, Bench, Drain, Subscriber
from benchcommon.meshwatch_run import MeshwatchRun
from benchcommon.report import fmt, wide_console
from benchcommon.runs import add_run_options, require_positive, work_dir
from benchcommon.workloads import add_workload_options, make_workload

from meshwatch.localservers import Mosquitto, RabbitCluster, free_port

from .bare import BarePaho, bare_child
from .cluster import ClusterRun
from .report import report, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, from `argv` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="Drain the same QoS 1 backlog with a bare paho subscriber and with "
        "`meshwatch run`; compare readings/s.",
    )
    add_workload_options(parser)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5,000 single and 500 batched messages"
    )
    parser.add_argument(
        "--only", choices=("single", "batched"), help="run one workload only (default both)"
    )
    add_run_options(parser, "keep broker, data and logs here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record meshwatch with `py-spy record --format raw` during each drain into DIR "
        "(py-spy takes CPU: rates of such a run are not comparable)",
    )
    parser.add_argument(
        "--workers",
        default="0",
        help="comma-separated `meshwatch run --workers` counts to drain with, e.g. 1,2 "
        "(default 0: the setting's default, one per core)",
    )
    parser.add_argument(
        "--cluster",
        default="",
        help="comma-separated counts of meshwatch instances to drain a 3-node RabbitMQ "
        "cluster with (amqp.urls), in the same run, e.g. 1,2 (default: none)",
    )
    parser.add_argument(
        "--no-alerts-run",
        action="store_true",
        help="leave out the run with alerting off",
    )
    parser.add_argument("--bare-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.batched_messages = 5_000, 500
    require_positive(parser, args, ("messages", "batched_messages", "batch", "assets", "sites"))
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: expected counts such as 1,2, got {args.workers!r}")
    try:
        args.cluster = [int(n) for n in args.cluster.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--cluster: expected counts such as 1,2, got {args.cluster!r}")
    if any(n < 1 for n in args.cluster):
        parser.error("--cluster: every instance count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on `argv` (default ``sys.argv[1:]``); return the exit status.

    Exit status 0 if every goal passed and every check held, 1 otherwise.
    """
    args = parse_args(argv)
    if args.bare_child:
        host, port, n, timeout = args.bare_child
        bare_child(host, int(port), int(n), float(timeout))
        return 0
    console = wide_console()
    plan = []
    if args.only in (None, "single"):
        plan.append(("single", args.messages, 1))
    if args.only in (None, "batched"):
        plan.append(("batched", args.batched_messages, args.batch))
    drains: list[Drain] = []
    began = time.monotonic()
    with work_dir(args.workdir, args.keep, "meshwatch-bench-") as workdir, ExitStack() as stack:
        console.log(f"work dir {workdir}")
        cluster = None
        if args.cluster:
            t0 = time.monotonic()
            cluster = stack.enter_context(RabbitCluster(workdir / "rabbitmq", size=3))
            console.log(f"RabbitMQ cluster of 3 nodes up in {time.monotonic() - t0:.0f} s")
        with Mosquitto(workdir / "mosquitto", free_port()) as broker:
            bench = Bench(broker, workdir, console, args.profile)
            subscribers: list[Subscriber] = [BarePaho(bench)]
            for count in args.workers:
                named = f"{MESHWATCH}, {count} workers" if count else MESHWATCH
                workers = {"MESHWATCH_WORKERS": str(count)}
                run = MeshwatchRun(bench, name=named, tag=f"w{count}", settings=workers)
                subscribers.append(run)
            # The same pipeline without alerting shows what alert evaluation costs end to end.
            if not args.no_alerts_run:
                no_alerts = MeshwatchRun(
                    bench,
                    name=f"{MESHWATCH}, alerts off",
                    tag="noalerts",
                    settings={"MESHWATCH_ALERTS__ENABLED": "false"},
                )
                subscribers.append(no_alerts)
            if cluster is not None:
                subscribers.extend(ClusterRun(bench, cluster, n) for n in args.cluster)
            for name, messages, batch in plan:
                t0 = time.monotonic()
                workload = make_workload(name, messages, batch, args.assets, args.sites)
                console.log(
                    f"{name}: {messages:,} messages, {workload.readings:,} readings, "
                    f"{workload.payload_bytes / 1e6:.1f} MB generated in "
                    f"{time.monotonic() - t0:.1f} s"
                )
                for subscriber in subscribers:
                    drain = subscriber.drain(workload)
                    console.log(
                        f"{name} / {drain.subscriber}: {drain.status}, "
                        f"{fmt(drain.steady_rate, ',.0f')} readings/s first→last"
                    )
                    drains.append(drain)
                del workload
    console.log(f"total {time.monotonic() - began:.0f} s")
    ok = report(console, drains)
    if args.json is not None:
        write_json(args.json, drains)
    return 0 if ok else 1
