"""``meshwatch status``: every asset's health, from the broker or the data dir."""

from __future__ import annotations

import time

import click
import orjson

from meshwatch.clicontext import client_settings_of
from meshwatch.savedhealth import saved_health


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One health message per line, as JSON.")
@click.option(
    "--wait",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to collect the retained health messages, at most.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Read the health map saved in the data dir (no broker needed: after a demo, say).",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, wait: float, local: bool) -> None:
    """Show every asset's health, as the running pipelines publish it (retained MQTT)."""
    full = client_settings_of(ctx)
    settings = full.mqtt
    if local:
        fleet = saved_health(full.data_dir)
        if not fleet:
            raise click.ClickException(f"no health map saved in {full.data_dir / 'alerts.db'}")
    else:
        # Imported here, as the table printer below: --local needs no broker client, --json
        # no table.
        from meshwatch import remote

        try:
            fleet = remote.fleet_health(settings, wait=wait)
        except remote.RemoteError as exc:
            raise click.ClickException(str(exc)) from None
    if not fleet:
        raise click.ClickException(
            f"no health messages on {settings.prefix}/health/# (is a pipeline running?)"
        )
    fleet.sort(key=lambda h: (str(h.get("site", "")), str(h.get("asset", ""))))
    if as_json:
        for health in fleet:
            click.echo(orjson.dumps(health))
        return
    from rich.console import Console

    from meshwatch import tables

    console = Console()
    console.print(tables.health_table(fleet, time.time()))
    console.print(tables.status_counts(fleet), markup=False, highlight=False)
