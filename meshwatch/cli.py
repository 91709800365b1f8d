"""The ``meshwatch`` command line.

Every error the user can act on is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import click
import orjson
import yaml
from rich.console import Console
from rich.table import Table

from ingest.deadletters import DeadLetters
from ingest.errors import Reason
from meshwatch import app
from meshwatch.errors import MeshwatchError
from meshwatch.settings import Settings, load_settings
from models.errors import ModelError


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


def _settings(ctx: click.Context) -> Settings:
    settings = load_settings(ctx.find_root().obj)
    logging.basicConfig(
        level=settings.log.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return settings


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
@click.option("--assets", default=12, show_default=True, type=click.IntRange(1, 1000))
@click.option("--readings", default=500, show_default=True, type=click.IntRange(1))
@click.pass_context
def demo(ctx: click.Context, assets: int, readings: int) -> None:
    """Start a local broker, the pipeline and a few publishing assets; print a summary."""
    from meshwatch.demo import run_demo

    run_demo(_settings(ctx), assets=assets, readings=readings)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
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
    as_json: bool,
) -> None:
    """Run the live detectors over labelled CSV files and print F1, FAR, MAR and delays."""
    from meshwatch import evaluation

    settings = _settings(ctx)
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


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


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
    except MeshwatchError as exc:
        click.echo(f"meshwatch: {exc}", err=True)
        sys.exit(2)
