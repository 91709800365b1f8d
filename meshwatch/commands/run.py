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
# How the reader of ``--workers`` starts each worker: its end of the link (meshwatch.workers).
@click.option("--link", type=int, default=None, hidden=True)
@click.pass_context
def run(ctx: click.Context, workers: int | None, link: int | None) -> None:
    """Run the ingest pipeline until SIGTERM or Ctrl-C."""
    settings = settings_of(ctx)
    # Imported here: the pipeline brings the detectors (river) and the stores.
    from meshwatch import app

    if link is not None:
        app.run_worker(settings, link)
        return
    from meshwatch import workers as reader

    count = (settings.workers if workers is None else workers) or reader.cores()
    if count == 1:
        app.run(settings)
        return
    app.check(settings, count)  # a mistake is one line from the reader, not from each worker
    reader.run(settings, count, ctx.find_root().obj)
