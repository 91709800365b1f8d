"""The ``meshwatch`` command line.

Every error the user can act on is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click
import orjson
import yaml
from rich.console import Console
from rich.table import Table

from alerts.errors import CommandError
from alerts.labels import Verdict, read_labels
from alerts.shelves import check_duration
from common.durations import parse_duration
from common.timestamps import TimestampError, parse_rfc3339
from ingest.deadletters import DeadLetters
from ingest.errors import Reason
from ingest.topic import ID_RULE
from meshwatch import app, remote, tables
from meshwatch.clicontext import settings_of as _settings
from meshwatch.errors import MeshwatchError
from meshwatch.recording import record, replay
from meshwatch.simulate import simulate
from models.errors import ModelError
from simulators.errors import SimulatorError

_ID = re.compile(ID_RULE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML configuration file (environment variables override it).",
)
@click.version_option(package_name="meshwatch")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """meshwatch: equipment-health monitoring for networks of micro-factories."""
    ctx.obj = config_file


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the ingest pipeline until SIGTERM or Ctrl-C."""
    app.run(_settings(ctx))


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many.")
@click.option("--reason", type=click.Choice([r.value for r in Reason]), help="Only this reason.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, payload kept.")
@click.pass_context
def deadletters(ctx: click.Context, limit: int, reason: str | None, as_json: bool) -> None:
    """List rejected messages, newest first, with their reasons."""
    settings = _settings(ctx)
    path = settings.data_dir / "deadletters.db"
    if not path.exists():
        click.echo(f"no dead letters: {path} does not exist yet")
        return
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
    table = Table(title=f"dead letters ({sum(counts.values())} kept)")
    for column in ("received", "reason", "topic", "detail", "payload"):
        table.add_column(column, overflow="fold")
    for d in letters:
        payload = repr(d.payload[:60]) + ("…" if len(d.payload) > 60 else "")
        table.add_row(_iso(d.received_at), d.reason.value, d.topic, d.detail, payload)
    console = Console()
    console.print(table)
    console.print("by reason: " + (", ".join(f"{r} {n}" for r, n in counts.items()) or "none"))


@cli.group()
def config() -> None:
    """Show the configuration."""


@config.command()
def sample() -> None:
    """Print a commented sample configuration file with every default."""
    click.echo(resources.files("meshwatch").joinpath("sample.yaml").read_text(), nl=False)


@config.command()
@click.pass_context
def show(ctx: click.Context) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = _settings(ctx)
    click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), nl=False)


@cli.command()
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
    from meshwatch.demo import run_demo
    from simulators.fleet import fleet_path

    fleet_file = fleet_path(fleet)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None
    run_demo(
        _settings(ctx),
        fleet_file=fleet_file,
        speed=speed or None,
        duration=seconds,
        live=live,
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--profile",
    "profile_name",
    default="default",
    show_default=True,
    help="Detector profile (from the configuration).",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["skab", "csv"]),
    default="skab",
    show_default=True,
    help="skab: ';'-separated SKAB files; csv: the flags below.",
)
@click.option("--timestamp-column", default="timestamp", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--delimiter", default=",", show_default=True)
@click.option(
    "--train-rows",
    type=click.IntRange(0),
    default=None,
    help="Rows per file before the test part [default: the profile's warm-up].",
)
@click.option(
    "--plot",
    "plot_to",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Draw the first file's metrics, score, threshold, labels and flags.",
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A simulator's ground truth: evaluate the recorded run PATH (.jsonl.gz) against it.",
)
@click.option(
    "--feedback",
    is_flag=True,
    help="Score the alerts against the verdicts of maintenance staff (the data dir's labels).",
)
@click.option(
    "--export-labels",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --feedback: write the confirmed faults as ground truth for --labels.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, then overall.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    paths: tuple[Path, ...],
    profile_name: str,
    file_format: str,
    timestamp_column: str,
    label_column: str,
    delimiter: str,
    train_rows: int | None,
    plot_to: Path | None,
    labels: Path | None,
    feedback: bool,
    export_labels: Path | None,
    as_json: bool,
) -> None:
    """Run the live detectors over labelled CSV files and print F1, FAR, MAR and delays.

    With --labels, PATH is a recorded run (meshwatch record, .jsonl.gz) and the whole pipeline
    (scoring and alert rules) is judged against the simulator's ground truth: faults detected,
    how soon after onset, false alarms per asset-day.

    With --feedback (no PATH), the alerts are scored against what maintenance staff said of
    them (meshwatch feedback): per rule and per asset, confirmed faults, false alarms and the
    precision they saw.
    """
    from meshwatch import evaluation

    settings = _settings(ctx)
    if feedback:
        if paths:
            raise click.UsageError("--feedback reads the labels in the data dir: give no PATH")
        _feedback_report(settings.data_dir, export_labels, as_json)
        return
    if export_labels is not None:
        raise click.UsageError("--export-labels goes with --feedback")
    if not paths:
        raise click.UsageError("give the labelled files (or a recorded run) to evaluate: PATH...")
    if labels is not None:
        from meshwatch import runevaluation

        if len(paths) != 1:
            raise click.BadParameter("give one recorded run with --labels", param_hint="PATHS")
        result = runevaluation.evaluate_run(paths[0], labels, settings)
        runevaluation.report(result, Console(), as_json=as_json)
        return
    profiles = {p.name: p for p in settings.models.profiles}
    if profile_name not in profiles:
        raise click.BadParameter(
            f"no profile {profile_name!r} (configured: {', '.join(profiles)})",
            param_hint="--profile",
        )
    profile = profiles[profile_name]
    try:
        files = evaluation.find_files(paths)
        reader = evaluation.Reader(file_format, timestamp_column, label_column, delimiter)
        evaluation.run(
            files,
            reader,
            profile,
            profile.warmup if train_rows is None else train_rows,
            plot_to=plot_to,
            as_json=as_json,
            console=Console(),
        )
    except ModelError as exc:
        raise MeshwatchError(str(exc)) from None


def _feedback_report(data_dir: Path, export: Path | None, as_json: bool) -> None:
    """Print the feedback report (and write the confirmed faults as ground truth)."""
    from meshwatch import feedbackreport

    found = read_labels(data_dir / "alerts.db")
    if not found:
        raise click.ClickException(
            f"no verdicts in {data_dir / 'alerts.db'} yet (give them with meshwatch feedback)"
        )
    report = feedbackreport.feedback_report(found)
    exported = None
    if export is not None:
        try:
            exported = feedbackreport.ground_truth(found, export, time.time_ns())
        except OSError as exc:
            raise click.ClickException(f"cannot write {export}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(orjson.dumps(feedbackreport.report_json(report)))
        return
    console = Console()
    for table in feedbackreport.report_tables(report):
        console.print(table)
    if exported is not None:
        console.print(f"{exported} confirmed faults written to {export}", highlight=False)


# ---- the running pipeline, through the broker: status, silence, ack, shelve, feedback ----

_timeout_option = click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the pipeline's reply.",
)


def _ask(
    ctx: click.Context,
    command: remote.Command,
    body: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    """Send a command to the running pipeline; its refusal or silence is one line, exit 1."""
    try:
        return remote.request(_settings(ctx).mqtt, command, body, timeout=timeout)
    except remote.RemoteError as exc:
        raise click.ClickException(str(exc)) from None


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


def _user() -> str:
    return os.environ.get("USER") or "cli"


@cli.command()
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
    full = _settings(ctx)
    settings = full.mqtt
    if local:
        fleet = remote.saved_health(full.data_dir)
        if not fleet:
            raise click.ClickException(f"no health map saved in {full.data_dir / 'alerts.db'}")
    else:
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
    console = Console()
    console.print(tables.health_table(fleet, time.time()))
    console.print(tables.status_counts(fleet), markup=False, highlight=False)


@cli.group()
def silence() -> None:
    """Add, list and expire silences in the running pipeline."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", help="How long from the start, e.g. 2h or 30m.")
@click.option("--ends-at", callback=_rfc3339, help="When it ends (RFC 3339).")
@click.option("--starts-at", callback=_rfc3339, help="When it starts (RFC 3339) [default: now].")
@click.option("--by", "created_by", default=_user, show_default="$USER or cli", help="Who.")
@click.option("--comment", required=True, help="Why (shown with the silence).")
@_timeout_option
@click.pass_context
def silence_add(
    ctx: click.Context,
    matchers: tuple[str, ...],
    duration: str | None,
    ends_at: str | None,
    starts_at: str | None,
    created_by: str,
    comment: str,
    timeout: float,
) -> None:
    """Mute the alerts whose labels match every MATCHER (site=plant-a asset=~"cnc-.*").

    Labels are site, asset, kind, rule and severity; operators =, !=, =~ and !~.
    """
    try:
        checked = [remote.check_matcher(m) for m in matchers]
    except remote.MatcherError as exc:
        raise click.UsageError(str(exc)) from None
    if (duration is None) == (ends_at is None):
        raise click.UsageError("give either --duration (e.g. 2h) or --ends-at (RFC 3339)")
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
    else:
        body["ends_at"] = ends_at
    added = _ask(ctx, "silence", body, timeout).get("silence", {})
    line = f"silence {added.get('id')} {added.get('status', 'added')}"
    if added.get("status") == "pending":
        line += f" from {tables.short_time(added.get('starts_at'))}"
    click.echo(f"{line} until {tables.short_time(added.get('ends_at'))}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@click.option("--json", "as_json", is_flag=True, help="One silence per line, as JSON.")
@_timeout_option
@click.pass_context
def silence_list(ctx: click.Context, show_all: bool, as_json: bool, timeout: float) -> None:
    """List the active and pending silences (--all: the expired ones too)."""
    reply = _ask(ctx, "silence", {"action": "list", "all": show_all}, timeout)
    silences = reply.get("silences") or []
    if as_json:
        for entry in silences:
            click.echo(orjson.dumps(entry))
    elif not silences:
        click.echo("no silences" if show_all else "no active or pending silences")
    else:
        Console().print(tables.silence_table(silences))


@silence.command("expire")
@click.argument("silence_id", metavar="ID")
@_timeout_option
@click.pass_context
def silence_expire(ctx: click.Context, silence_id: str, timeout: float) -> None:
    """End a silence now."""
    expired = _ask(ctx, "silence", {"action": "expire", "id": silence_id}, timeout)
    entry = expired.get("silence", {})
    click.echo(f"silence {entry.get('id', silence_id)} {entry.get('status', 'expired')}")


@cli.command()
@click.argument("alert_id")
@click.option("--by", default=_user, show_default="$USER or cli", help="Who takes it.")
@click.option("--comment", default="", help="A note kept with the acknowledgement.")
@_timeout_option
@click.pass_context
def ack(ctx: click.Context, alert_id: str, by: str, comment: str, timeout: float) -> None:
    """Acknowledge an alert in the running pipeline (someone is on it)."""
    reply = _ask(ctx, "ack", {"id": alert_id, "by": by, "comment": comment}, timeout)
    alert = reply.get("alert", {})
    where = f" ({alert.get('rule')} on {alert.get('site')}/{alert.get('asset')})" if alert else ""
    click.echo(f"alert {alert.get('id', alert_id)}{where} acknowledged by {by}")


def _shelf_duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Check ``--for`` as the pipeline will (a duration above 0, at most a day)."""
    try:
        check_duration(parse_duration(value))
    except (ValueError, CommandError) as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _which(alert: dict[str, Any], alert_id: str) -> str:
    """``alert ID (rule on site/asset)``, from a reply's alert."""
    where = f" ({alert.get('rule')} on {alert.get('site')}/{alert.get('asset')})" if alert else ""
    return f"alert {alert.get('id', alert_id)}{where}"


@cli.command()
@click.argument("alert_id")
@click.option(
    "--for",
    "duration",
    required=True,
    callback=_shelf_duration,
    help="How long, e.g. 2h or 30m (at most 1d).",
)
@click.option("--comment", default="", help="Why (kept with the shelf, shown in the health map).")
@click.option("--by", default=_user, show_default="$USER or cli", help="Who shelves it.")
@_timeout_option
@click.pass_context
def shelve(
    ctx: click.Context, alert_id: str, duration: str, comment: str, by: str, timeout: float
) -> None:
    """Shelve a firing alert in the running pipeline: no notifications for a while (ISA-18.2).

    The shelf ends at its time, with `meshwatch unshelve`, or when the alert resolves; an
    alert still firing when its shelf ends is announced again.
    """
    body = {"action": "shelve", "id": alert_id, "duration": duration, "by": by, "comment": comment}
    reply = _ask(ctx, "shelve", body, timeout)
    shelf = reply.get("shelf", {})
    until = tables.short_time(shelf.get("ends_at"))
    click.echo(f"{_which(reply.get('alert', {}), alert_id)} shelved by {by} until {until}")


@cli.command()
@click.argument("alert_id")
@click.option("--by", default=_user, show_default="$USER or cli", help="Who unshelves it.")
@_timeout_option
@click.pass_context
def unshelve(ctx: click.Context, alert_id: str, by: str, timeout: float) -> None:
    """End an alert's shelf now in the running pipeline (still firing, it is announced again)."""
    reply = _ask(ctx, "shelve", {"action": "unshelve", "id": alert_id, "by": by}, timeout)
    click.echo(f"{_which(reply.get('alert', {}), alert_id)} unshelved")


def _verdict(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``normal`` or ``fault`` (click's own choice message spans several lines)."""
    if value not in tuple(Verdict):
        raise click.BadParameter(f"{value!r} is not one of 'normal', 'fault'")
    return value


@cli.command()
@click.argument("alert_id")
@click.argument("verdict", metavar="normal|fault", callback=_verdict)
@click.option("--comment", default="", help="What was found (kept with the verdict).")
@click.option("--by", default=_user, show_default="$USER or cli", help="Who gives the verdict.")
@_timeout_option
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
    reply = _ask(ctx, "feedback", body, timeout)
    click.echo(_feedback_line(reply, alert_id, verdict, by))


def _feedback_line(reply: dict[str, Any], alert_id: str, verdict: str, by: str) -> str:
    """One line saying what the verdict did."""
    alert = reply.get("alert", {})
    line = _which(alert, alert_id)
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


@cli.group()
def model() -> None:
    """The running pipeline's asset models."""


def _site_asset(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, str]:
    """``SITE/ASSET``, each an id as the telemetry topics have them."""
    site, _, asset = value.partition("/")
    if not (_ID.fullmatch(site) and _ID.fullmatch(asset)):
        raise click.BadParameter(
            f"{value!r} is not SITE/ASSET (ids of letters, digits, '_', '.', '-': lyon/cnc-1)"
        )
    return site, asset


@model.command("reset")
@click.argument("target", metavar="SITE/ASSET", callback=_site_asset)
@click.option("--comment", default="", help="Why (after maintenance: what was changed).")
@click.option("--by", default=_user, show_default="$USER or cli", help="Who asks for it.")
@_timeout_option
@click.pass_context
def model_reset(
    ctx: click.Context, target: tuple[str, str], comment: str, by: str, timeout: float
) -> None:
    """Discard an asset's model in the running pipeline: it learns again from scratch.

    For after maintenance: a new bearing changes what normal is. The model warms up again
    (no anomaly verdicts until it has), from the asset's next readings.
    """
    site, asset = target
    body = {"action": "reset", "site": site, "asset": asset, "by": by, "comment": comment}
    _ask(ctx, "model", body, timeout)
    click.echo(f"model of {site}/{asset} reset by {by}: it learns again from scratch (warm-up)")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


cli.add_command(simulate)
cli.add_command(record)
cli.add_command(replay)


def main() -> None:
    """Entry point of the console script: one line per error, non-zero exit."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("meshwatch: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"meshwatch: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (MeshwatchError, SimulatorError) as exc:
        click.echo(f"meshwatch: {exc}", err=True)
        sys.exit(2)
