"""``meshwatch demo``: a broker, the pipeline and a simulated fleet with faults, end to end.

Starts mosquitto on a free port, runs the pipeline on the embedded store in the data dir,
and runs the fleet simulator (the small shipped fleet by default, with its scheduled faults)
at high speed over MQTT, exactly as sensors would. While it runs, a live view shows the
fleet's health, the latest alerts and the reroute advice, as any tool on the broker sees
them, and the web console serves the same fleet: read-only unless ``web.users_file`` is
set, on ``web.port`` (any free port when that one is taken). It ends by itself (or on
Ctrl-C) with a summary: each injected fault, whether and how soon it was detected, the false
alarms, the alarm report (`meshwatch.alarmreport`: false alarms per machine-hour, alarms per
10 minutes against EEMUA 191 and ISA-18.2, chattering and stale alarms), and the readings
processed. The models run with the configured settings and their default warm-up, as a
fresh install's would.

Simulated time ends now: the run starts ``duration`` in the past, so every timestamp is
one the pipeline accepts, and the data stays in the data dir for ``meshwatch status`` and a
look afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from common.durations import format_duration as human
from meshwatch.alarmreport import AlarmReport, alarm_report, report_table
from meshwatch.app import App, build
from meshwatch.demoview import FleetWatcher, render
from meshwatch.localservers import MissingBinaryError, Mosquitto, find_binary, inprocess
from meshwatch.localservers.inprocess import InProcessBroker
from meshwatch.runevaluation import faults_table, read_faults
from meshwatch.settings import Settings
from meshwatch.web.serve import ListenError, WebServer
from simulators.fleet import load_fleet
from simulators.publisher import RunSummary
from simulators.publisher import run as simulate

# How long the pipeline may take to store what the simulator sent once it has finished.
_DRAIN_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run did: the simulator's summary, the alarm report, readings, wall time."""

    run: RunSummary
    report: AlarmReport
    stored: int
    seconds: float


def run_demo(
    settings: Settings,
    *,
    fleet_file: Path,
    speed: float | None,
    duration: float,
    live: bool,
    console: Console | None = None,
) -> DemoResult:
    """Run the demo and print its summary; everything it stored stays in the data dir."""
    console = console or Console()
    load_fleet(fleet_file)  # a bad fleet file fails here, before anything starts
    data_dir = settings.data_dir
    broker, protocol = _broker(data_dir, console)
    broker.start()
    try:
        mqtt = {"host": broker.host, "port": broker.port, "protocol": protocol}
        settings = settings.model_copy(
            update={
                "mqtt": settings.mqtt.model_copy(update=mqtt),
                "influx": settings.influx.model_copy(update={"url": None}),
                "http": settings.http.model_copy(update={"port": 0}),
            }
        )
        web = _console(settings, console)
        try:
            return _run(settings, fleet_file, speed, duration, live, console, broker)
        finally:
            web.stop()
    finally:
        broker.stop()


def _run(
    settings: Settings,
    fleet_file: Path,
    speed: float | None,
    duration: float,
    live: bool,
    console: Console,
    broker: Mosquitto | InProcessBroker,
) -> DemoResult:
    fleet = load_fleet(fleet_file)
    app = build(settings)
    worker = threading.Thread(target=app.run, name="pipeline")
    worker.start()
    began = time.monotonic()
    labels_path = settings.data_dir / "demo-labels.jsonl"
    result: list[RunSummary] = []
    stop = threading.Event()
    # Simulated time ends now (see the module docstring).
    start_ns = time.time_ns() - int(duration * 1e9)
    try:
        _wait_subscribed(app)
        watcher = FleetWatcher(
            broker.host, broker.port, settings.mqtt.prefix, settings.mqtt.protocol
        )
        try:
            done = threading.Event()

            def simulation() -> None:
                try:
                    result.append(
                        simulate(
                            fleet,
                            host=broker.host,
                            port=broker.port,
                            topic=settings.mqtt.topic,
                            speed=speed,
                            duration=duration,
                            start_ns=start_ns,
                            labels_path=labels_path,
                            protocol=settings.mqtt.protocol,
                            progress=False,
                            stop=stop,
                        )
                    )
                finally:
                    done.set()

            sim = threading.Thread(target=simulation, name="simulator")
            sim.start()
            try:
                _show(app, watcher, sim, live, console, began)
            except KeyboardInterrupt:
                # Ctrl-C ends the run early, with its summary: the simulator stops cleanly
                # (it writes the labels of what it ran) and the pipeline stores what came.
                console.print("stopping: Ctrl-C")
                stop.set()
            # Not sim.join(): a join that Ctrl-C interrupted may return early on Python 3.11.
            done.wait()
            if not result:
                raise RuntimeError("the simulator stopped without a summary (see the log above)")
            stored = _drain(app, result[0].readings)
            report = alarm_report(
                read_faults(labels_path),
                watcher.alerts,
                machines=sum(len(site.assets) for site in fleet.sites),
                start=start_ns,
                end=start_ns + int(result[0].simulated_seconds * 1e9),
            )
        finally:
            watcher.close()
    finally:
        stop.set()
        app.stop.set()
        worker.join(30)
    demo = DemoResult(result[0], report, stored, time.monotonic() - began)
    _summary(console, demo, settings.data_dir, labels_path)
    return demo


def _broker(data_dir: Path, console: Console) -> tuple[Mosquitto | InProcessBroker, str]:
    """Mosquitto when it is installed, else amqtt in this process (MQTT 3.1.1 only)."""
    try:
        find_binary("mosquitto")
    except MissingBinaryError:
        if inprocess.available():
            console.print("mosquitto is not installed: the demo runs amqtt in-process (MQTT 3.1.1)")
            return InProcessBroker(), "3.1.1"
    return Mosquitto(data_dir / "demo-broker"), "5"


def _console(settings: Settings, console: Console) -> WebServer:
    """The web console on the demo's broker and store, started; its address printed."""
    read_only = settings.web.users_file is None
    try:
        web = WebServer(settings, read_only=read_only)
    except ListenError as exc:
        console.print(f"{exc}: the console takes any free port")
        web = WebServer(settings, read_only=read_only, port=0)
    web.start()
    # Scripts and tests read this line: keep its form.
    console.print(f"console: {web.address}{' (read-only)' if read_only else ''}", highlight=False)
    return web


def _wait_subscribed(app: App) -> None:
    """The pipeline's session is new: what is published before it subscribed is lost."""
    deadline = time.monotonic() + 30
    while not app.source.subscribed:
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not subscribe within 30 s (see the log)")
        time.sleep(0.02)


def _show(
    app: App,
    watcher: FleetWatcher,
    sim: threading.Thread,
    live: bool,
    console: Console,
    began: float,
) -> None:
    """The live view until the simulator ends (or a line now and then without a terminal)."""

    def footer() -> str:
        stored = _stored(app)
        seconds = time.monotonic() - began
        return f"{stored:,} readings stored, {stored / max(seconds, 1e-9):,.0f}/s, {seconds:.0f} s"

    if not live:
        while sim.is_alive():
            sim.join(1.0)
        return
    with Live(render(watcher, footer()), console=console, refresh_per_second=4) as view:
        while sim.is_alive():
            sim.join(0.25)
            view.update(render(watcher, footer()))


def _stored(app: App) -> int:
    value = app.metrics.registry.get_sample_value("meshwatch_readings_accepted_total")
    return int(value or 0)


def _drain(app: App, expected: int) -> int:
    """Wait until the pipeline stored what was sent; return how many it stored."""
    deadline = time.monotonic() + _DRAIN_SECONDS
    while _stored(app) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # a last tick: flushes and deadman checks of the final second
    return _stored(app)


def _summary(console: Console, demo: DemoResult, data_dir: Path, labels: Path) -> None:
    console.print(faults_table(demo.report.score.findings))
    # Scripts read this line: keep its form.
    console.print(demo.report.score.line(), highlight=False)
    console.print(report_table(demo.report))
    run = demo.run
    console.print(
        f"readings: {run.readings:,} sent in {run.messages:,} messages, {demo.stored:,} stored, "
        f"{demo.stored / max(demo.seconds, 1e-9):,.0f} readings/s over {demo.seconds:.0f} s "
        f"({human(run.simulated_seconds)} simulated)"
    )
    console.print(
        f"data: {data_dir}/meshwatch.db, alerts in {data_dir}/alerts.db, ground truth in "
        f"{labels} (try: meshwatch status --local; meshwatch deadletters)"
    )
