"""``meshwatch run``: the ingest pipeline, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import click

from meshwatch.clicontext import settings_of


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the ingest pipeline until SIGTERM or Ctrl-C."""
    # Imported here: the pipeline brings the detectors (river) and the stores.
    from meshwatch import app

    app.run(settings_of(ctx))
