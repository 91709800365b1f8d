"""``meshwatch silence add``, ``list`` and ``expire``: the running pipeline's silences."""

from __future__ import annotations

from typing import Any

import click
import orjson

from common.timestamps import TimestampError, parse_rfc3339
from meshwatch.commands.running import ask, by_option, timeout_option


@click.group()
def silence() -> None:
    """Add, list and expire silences in the running pipeline."""


def _rfc3339(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_rfc3339(value)
    except TimestampError:
        raise click.BadParameter(
            f"{value!r} is not an RFC 3339 time (e.g. 2026-11-25T14:00:00Z)"
        ) from None
    return value


def _every(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check ``--every`` as the pipeline will (`alerts.timeintervals.parse_every`)."""
    if value is None:
        return None
    from alerts.timeintervals import parse_every

    try:
        parse_every(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from None
    return value


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", help="How long from the start, e.g. 2h or 30m.")
@click.option("--ends-at", callback=_rfc3339, help="When it ends (RFC 3339).")
@click.option("--starts-at", callback=_rfc3339, help="When it starts (RFC 3339) [default: now].")
@click.option(
    "--every",
    callback=_every,
    help="Repeat: mute only in this weekly window, e.g. 'mon 06:00-08:00' or "
    "'mon-fri 22:00-24:00 Europe/Berlin' (without --duration/--ends-at: until expired).",
)
@by_option("Who.", name="created_by")
@click.option("--comment", required=True, help="Why (shown with the silence).")
@timeout_option
@click.pass_context
def silence_add(
    ctx: click.Context,
    matchers: tuple[str, ...],
    duration: str | None,
    ends_at: str | None,
    starts_at: str | None,
    every: str | None,
    created_by: str,
    comment: str,
    timeout: float,
) -> None:
    """Mute the alerts whose labels match every MATCHER (site=plant-a asset=~"cnc-.*").

    Labels are site, asset, kind, rule and severity; operators =, !=, =~ and !~. With
    --every, a planned maintenance window that repeats: it mutes only inside the window
    (judged in event time), between its start and its end.
    """
    from meshwatch import remote, tables

    try:
        checked = [remote.check_matcher(m) for m in matchers]
    except remote.MatcherError as exc:
        raise click.UsageError(str(exc)) from None
    if duration is not None and ends_at is not None:
        raise click.UsageError("give either --duration (e.g. 2h) or --ends-at (RFC 3339), not both")
    if every is None and duration is None and ends_at is None:
        raise click.UsageError(
            "give either --duration (e.g. 2h) or --ends-at (RFC 3339), or --every for a "
            "repeating silence"
        )
    body: dict[str, Any] = {
        "action": "add",
        "matchers": checked,
        "created_by": created_by,
        "comment": comment,
    }
    if starts_at is not None:
        body["starts_at"] = starts_at
    if duration is not None:
        body["duration"] = duration
    elif ends_at is not None:
        body["ends_at"] = ends_at
    if every is not None:
        body["every"] = every
    added = ask(ctx, "silence", body, timeout).get("silence", {})
    line = f"silence {added.get('id')} {added.get('status', 'added')}"
    if added.get("every"):
        line += f", every {added['every']},"
    if added.get("status") == "pending":
        line += f" from {tables.short_time(added.get('starts_at'))}"
    if duration is None and ends_at is None:
        click.echo(f"{line} until expired")
    else:
        click.echo(f"{line} until {tables.short_time(added.get('ends_at'))}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@click.option("--json", "as_json", is_flag=True, help="One silence per line, as JSON.")
@timeout_option
@click.pass_context
def silence_list(ctx: click.Context, show_all: bool, as_json: bool, timeout: float) -> None:
    """List the active and pending silences (--all: the expired ones too)."""
    reply = ask(ctx, "silence", {"action": "list", "all": show_all}, timeout)
    silences = reply.get("silences") or []
    if as_json:
        for entry in silences:
            click.echo(orjson.dumps(entry))
    elif not silences:
        click.echo("no silences" if show_all else "no active or pending silences")
    else:
        # Imported here: only the table needs rich.
        from rich.console import Console

        from meshwatch.tables import silence_table

        Console().print(silence_table(silences))


@silence.command("expire")
@click.argument("silence_id", metavar="ID")
@timeout_option
@click.pass_context
def silence_expire(ctx: click.Context, silence_id: str, timeout: float) -> None:
    """End a silence now."""
    expired = ask(ctx, "silence", {"action": "expire", "id": silence_id}, timeout)
    entry = expired.get("silence", {})
    click.echo(f"silence {entry.get('id', silence_id)} {entry.get('status', 'expired')}")
