"""``meshwatch simulate``: publish a simulated fleet, with faults, to the configured broker."""

from __future__ import annotations

from pathlib import Path

import click

from meshwatch.clicontext import settings_of


class BadInput(click.ClickException):
    """Bad input on the command line or in a file it names: one line, exit status 2."""

    exit_code = 2


@click.command("simulate")
@click.argument("fleet", metavar="FLEET")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second (60: an hour a minute); 0: as fast as possible.",
)
@click.option("--duration", default=None, help="Simulated time to run, e.g. 90s, 20m, 2h.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Readings to publish.")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Readings of one asset per message (a JSON array when more than 1).",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Ground-truth file (JSON lines). Default: <fleet name>-labels.jsonl here.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SITE/ASSET:TYPE@ONSET[+DEVELOP][*SEVERITY]",
    help="Schedule one more fault, e.g. berlin/cnc-1:overheating@10m+5m*0.8 (repeatable).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def simulate(
    ctx: click.Context,
    fleet: str,
    speed: float,
    duration: str | None,
    count: int | None,
    batch: int,
    labels_path: Path | None,
    faults: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Publish a simulated fleet (a fleet file, or the shipped ``small`` or ``large``).

    Readings go to the broker and topic of meshwatch's settings (``--config``, environment),
    at QoS 1. The ground truth of every fault that started is written to ``--labels``.
    """
    # imported here: ``meshwatch --help`` loads this module for its one-line help
    from common.durations import DurationError, parse_duration
    from simulators.errors import BrokerError, SimulatorError
    from simulators.faults import parse_fault_option
    from simulators.fleet import fleet_path, load_fleet, with_faults
    from simulators.publisher import run

    try:
        path = fleet_path(fleet)
        spec = with_faults(load_fleet(path), [parse_fault_option(text) for text in faults])
        seconds = None if duration is None else parse_duration(duration, positive=True)
    except DurationError as exc:
        raise BadInput(f"bad --duration: {exc}") from None
    except (SimulatorError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    settings = settings_of(ctx)
    mqtt = settings.mqtt
    labels = labels_path or Path(f"{path.stem}-labels.jsonl")
    try:
        summary = run(
            spec,
            host=mqtt.host,
            port=mqtt.port,
            topic=mqtt.topic,
            speed=speed or None,
            duration=seconds,
            count=count,
            batch=batch,
            labels_path=labels,
            username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password else None,
            tls=mqtt.tls,
            ca_file=mqtt.ca_file,
            cert_file=mqtt.cert_file,
            key_file=mqtt.key_file,
            progress=not no_progress,
        )
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    except SimulatorError as exc:
        raise BadInput(str(exc)) from None
    click.echo(
        f"simulated {summary.simulated_seconds:.0f} s: {summary.readings} readings in "
        f"{summary.messages} messages, {summary.rate:.0f} readings/s; "
        f"{len(summary.labels)} faults labelled in {labels}"
    )
