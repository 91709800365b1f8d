"""``meshwatch run``: the ingest pipeline, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import click

from meshwatch.clicontext import settings_of


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(min=0, max=256),
    default=None,
    help="Worker processes, each owning a partition of the assets (setting `workers`; "
    "0: one per core, the default).",
)
@click.pass_context
def run(ctx: click.Context, workers: int | None) -> None:
    """Run the ingest pipeline until SIGTERM or Ctrl-C."""
    settings = settings_of(ctx)
    from meshwatch.workers import cores

    count = settings.workers if workers is None else workers
    count = count or cores()
    if count > 1 and settings.ingest.partition is None:
        from meshwatch import app
        from meshwatch import workers as supervision

        app.check(settings)  # a mistake is one line from here, not one from each worker
        mqtt = settings.mqtt
        ctx.exit(supervision.run(count, ctx.find_root().obj, mqtt.client_id, settings.http.port))
    # Imported here: the pipeline brings the detectors (river) and the stores.
    from meshwatch import app

    app.run(settings)
