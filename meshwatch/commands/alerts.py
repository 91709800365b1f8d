"""``meshwatch ack``, ``shelve``, ``unshelve`` and ``feedback``: one alert of the running pipeline.

Each command is a request to the pipeline through the broker (`meshwatch.remote`); the reply
becomes one line saying what happened.
"""

from __future__ import annotations

from typing import Any

import click

from meshwatch.commands.running import ask, by_option, signed, timeout_option, which


@click.command()
@click.argument("alert_id")
@by_option("Who takes it.")
@click.option("--comment", default="", help="A note kept with the acknowledgement.")
@timeout_option
@click.pass_context
def ack(ctx: click.Context, alert_id: str, by: str, comment: str, timeout: float) -> None:
    """Acknowledge an alert in the running pipeline (someone is on it)."""
    reply = ask(ctx, "ack", {"id": alert_id, "by": by, "comment": comment}, timeout)
    click.echo(f"{which(reply.get('alert', {}), alert_id)} acknowledged by {by}")


def _shelf_duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Check ``--for`` as the pipeline will (a duration above 0, at most a day)."""
    from alerts.errors import CommandError
    from alerts.shelves import check_duration
    from common.durations import parse_duration

    try:
        check_duration(parse_duration(value))
    except (ValueError, CommandError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command()
@click.argument("alert_id")
@click.option(
    "--for",
    "duration",
    required=True,
    callback=_shelf_duration,
    help="How long, e.g. 2h or 30m (at most 1d).",
)
@signed("Why (kept with the shelf, shown in the health map).", "Who shelves it.")
@click.pass_context
def shelve(
    ctx: click.Context, alert_id: str, duration: str, comment: str, by: str, timeout: float
) -> None:
    """Shelve a firing alert in the running pipeline: no notifications for a while (ISA-18.2).

    The shelf ends at its time, with `meshwatch unshelve`, or when the alert resolves; an
    alert still firing when its shelf ends is announced again.
    """
    from meshwatch.tables import short_time

    body = {"action": "shelve", "id": alert_id, "duration": duration, "by": by, "comment": comment}
    reply = ask(ctx, "shelve", body, timeout)
    until = short_time(reply.get("shelf", {}).get("ends_at"))
    click.echo(f"{which(reply.get('alert', {}), alert_id)} shelved by {by} until {until}")


@click.command()
@click.argument("alert_id")
@by_option("Who unshelves it.")
@timeout_option
@click.pass_context
def unshelve(ctx: click.Context, alert_id: str, by: str, timeout: float) -> None:
    """End an alert's shelf now in the running pipeline (still firing, it is announced again)."""
    reply = ask(ctx, "shelve", {"action": "unshelve", "id": alert_id, "by": by}, timeout)
    click.echo(f"{which(reply.get('alert', {}), alert_id)} unshelved")


def _verdict(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``normal`` or ``fault`` (click's own choice message spans several lines)."""
    # Imported here, as in _feedback_line: the labels' store costs every command's --help.
    from alerts.labels import Verdict

    if value not in tuple(Verdict):
        raise click.BadParameter(f"{value!r} is not one of 'normal', 'fault'")
    return value


@click.command()
@click.argument("alert_id")
@click.argument("verdict", metavar="normal|fault", callback=_verdict)
@signed("What was found (kept with the verdict).", "Who gives the verdict.")
@click.pass_context
def feedback(
    ctx: click.Context, alert_id: str, verdict: str, comment: str, by: str, timeout: float
) -> None:
    """Give a verdict on an alert: normal (a false alarm) or fault (confirmed).

    normal teaches the asset's model that the alert's episode was normal for this machine,
    and resolves the alert if it still fires; fault records a confirmed fault. Both are kept
    as labels (meshwatch evaluate --feedback); a later verdict replaces an earlier one.
    """
    body = {"id": alert_id, "verdict": verdict, "by": by, "comment": comment}
    reply = ask(ctx, "feedback", body, timeout)
    click.echo(_feedback_line(reply, alert_id, verdict, by))


def _feedback_line(reply: dict[str, Any], alert_id: str, verdict: str, by: str) -> str:
    """One line saying what the verdict did."""
    from alerts.labels import Verdict

    alert = reply.get("alert", {})
    line = which(alert, alert_id)
    where = f"{alert.get('site')}/{alert.get('asset')}"
    if verdict == Verdict.FAULT:
        line += f" confirmed as a fault by {by}"
        if reply.get("replaced") == Verdict.NORMAL:
            line += (
                f"; its model learned the episode as normal before: "
                f"meshwatch model reset {where} makes it forget"
            )
        return line
    line += f" marked normal by {by}"
    if reply.get("resolved"):
        line += ": resolved"
    teaching = reply.get("teaching")
    if teaching == "requested":
        line += f"; the model of {where} learns the episode as normal"
    elif teaching == "already":
        line += f"; the model of {where} was taught this episode already"
    else:
        line += f" (a {alert.get('rule')} alert: no model learns from it)"
    return line
