"""``meshwatch evaluate``: the detectors, the pipeline or the alerts judged against labels.

Labelled CSV files run through the live detectors; a recorded run (``--labels``) runs through
the whole pipeline against a simulator's ground truth; ``--feedback`` scores the alerts
against the verdicts of maintenance staff.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson

from meshwatch.clicontext import settings_of
from meshwatch.errors import MeshwatchError


@click.command()
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
    from rich.console import Console

    from meshwatch import evaluation
    from models.errors import ModelError

    settings = settings_of(ctx)
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
    from rich.console import Console

    from alerts.labels import read_labels
    from meshwatch import feedbackreport
    from meshwatch.datadir import state_files

    found = [label for path in state_files(data_dir, "alerts.db") for label in read_labels(path)]
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
