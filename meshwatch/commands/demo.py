"""``meshwatch demo``: a broker, the pipeline and a simulated fleet with faults, summarised."""

from __future__ import annotations

import click

from meshwatch.clicontext import settings_of


@click.command()
@click.option(
    "--fleet",
    default="small",
    show_default=True,
    help="A fleet file, or small / large for the shipped ones.",
)
@click.option(
    "--speed",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Simulated seconds per wall second (0: as fast as possible).",
)
@click.option("--duration", default="2h", show_default=True, help="Simulated time, e.g. 90m.")
@click.option("--live/--no-live", default=True, show_default=True, help="The live view.")
@click.pass_context
def demo(ctx: click.Context, fleet: str, speed: float, duration: str, live: bool) -> None:
    """Run a broker, the pipeline and a simulated fleet with faults; summarise what was caught."""
    from common.durations import parse_duration
    from meshwatch.demo import run_demo
    from simulators.fleet import fleet_path

    fleet_file = fleet_path(fleet)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None
    run_demo(
        settings_of(ctx),
        fleet_file=fleet_file,
        speed=speed or None,
        duration=seconds,
        live=live,
    )
