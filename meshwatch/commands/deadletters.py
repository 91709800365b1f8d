"""``meshwatch deadletters``: the rejected messages, newest first, with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import orjson

from ingest.errors import Reason
from meshwatch.clicontext import client_settings_of


@click.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many.")
@click.option("--reason", type=click.Choice([r.value for r in Reason]), help="Only this reason.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, payload kept.")
@click.pass_context
def deadletters(ctx: click.Context, limit: int, reason: str | None, as_json: bool) -> None:
    """List rejected messages, newest first, with their reasons."""
    settings = client_settings_of(ctx)
    path = settings.data_dir / "deadletters.db"
    if not path.exists():
        click.echo(f"no dead letters: {path} does not exist yet")
        return
    # Imported here: a data dir without dead letters needs no store, and --json no table.
    from ingest.deadletters import DeadLetters

    store = DeadLetters(path)
    try:
        letters = store.latest(limit, Reason(reason) if reason else None)
        counts = store.counts()
    finally:
        store.close()
    if as_json:
        for d in letters:
            click.echo(orjson.dumps(d.to_json()))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dead letters ({sum(counts.values())} kept)")
    for column in ("received", "reason", "topic", "detail", "payload"):
        table.add_column(column, overflow="fold")
    for d in letters:
        payload = repr(d.payload[:60]) + ("…" if len(d.payload) > 60 else "")
        table.add_row(_iso(d.received_at), d.reason.value, d.topic, d.detail, payload)
    console = Console()
    console.print(table)
    console.print("by reason: " + (", ".join(f"{r} {n}" for r, n in counts.items()) or "none"))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
