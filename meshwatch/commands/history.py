"""``meshwatch alerts history``: what fired, for how long, who acted, who was told.

A request to the running pipeline through the broker (`meshwatch.remote`), like ``status``:
it reads its own store and replies, so this works from any machine that reaches the broker.
"""

from __future__ import annotations

import click
import orjson

from meshwatch.commands.running import ask, timeout_option


@click.group()
def alerts() -> None:
    """Ask the running pipeline about its alerts."""


def _since(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Check ``--since`` as the pipeline will (a duration above 0)."""
    from common.durations import parse_duration

    try:
        parse_duration(value, positive=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@alerts.command("history")
@click.argument("matchers", nargs=-1)
@click.option(
    "--since",
    default="7d",
    show_default=True,
    callback=_since,
    help="How far back from the pipeline's now (event time), e.g. 24h or 7d.",
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Most episodes listed (the newest); the footer says how many more there are.",
)
@click.option("--json", "as_json", is_flag=True, help="The pipeline's reply, as one JSON object.")
@click.option(
    "--summary",
    is_flag=True,
    help="Per asset and per rule: fired, false alarms, faults, MTTA, MTTR (the weekly review).",
)
@timeout_option
@click.pass_context
def history(
    ctx: click.Context,
    matchers: tuple[str, ...],
    since: str,
    limit: int,
    as_json: bool,
    summary: bool,
    timeout: float,
) -> None:
    """List the alert episodes whose labels match every MATCHER (site=lyon asset=~"cnc-.*").

    Each episode: rule, site/asset, severity, when it fired and resolved (open: still
    firing), how long, who acknowledged, shelved, silenced or gave a verdict and when, and
    the notifications each receiver was sent. Labels are site, asset, kind, rule and
    severity; operators =, !=, =~ and !~.
    """
    from meshwatch import remote

    try:
        checked = [remote.check_matcher(m) for m in matchers]
    except remote.MatcherError as exc:
        raise click.UsageError(str(exc)) from None
    body = {"matchers": checked, "since": since, "limit": limit, "summary": summary}
    reply = ask(ctx, "history", body, timeout)
    for envelope in ("request_id", "command", "ok"):
        reply.pop(envelope, None)
    if as_json:
        click.echo(orjson.dumps(reply))
        return
    from rich.console import Console

    from meshwatch import historytables

    console = Console()
    if summary:
        tallies = reply.get("summary", {})
        console.print(historytables.summary_table("per asset", tallies.get("assets", [])))
        if reply.get("more_assets"):
            console.print(f"{reply['more_assets']} more assets not shown", markup=False)
        console.print(historytables.summary_table("per rule", tallies.get("rules", [])))
    else:
        console.print(historytables.episodes_table(reply.get("episodes", [])))
    console.print(historytables.footer(reply), markup=False, highlight=False)
