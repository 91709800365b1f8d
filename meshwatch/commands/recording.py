"""``meshwatch record`` and ``meshwatch replay``: the simulators' recorder and replayer on the CLI.

The broker (host, port, credentials, TLS) comes from the settings (``--config``,
``MESHWATCH_MQTT__*``), as for ``meshwatch run``. Bad input is one line on stderr and exit
status 2 (`MeshwatchError`, printed by ``meshwatch.cli.main``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshwatch.clicontext import settings_of
from meshwatch.errors import MeshwatchError

if TYPE_CHECKING:  # the simulators are imported when a command runs, not for ``--help``
    from common.mqtt import Tls
    from ingest.settings import MqttSettings
    from simulators.recording import RecordingError


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    # Imported here: its settings type costs every command's --help pydantic's import.
    from common.durations import DurationError, parse_duration

    try:
        return parse_duration(value, positive=True)
    except DurationError as exc:
        raise click.BadParameter(str(exc)) from None


def _password(mqtt: MqttSettings) -> str | None:
    return mqtt.password.get_secret_value() if mqtt.password else None


def _tls(mqtt: MqttSettings) -> Tls | bool:
    from common.mqtt import Tls

    return Tls(mqtt.ca_file, mqtt.cert_file, mqtt.key_file) if mqtt.tls else False


@click.command("record")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The recording to write, FILE.jsonl.gz (replaced if it exists).",
)
@click.option(
    "--topic",
    "topic_filter",
    default=None,
    help="Topic filter [default: the telemetry template, placeholders as +].",
)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many.")
@click.option(
    "--duration", callback=_duration, default=None, help="Stop after this long (30s, 10m, 2h)."
)
@click.pass_context
def record(
    ctx: click.Context,
    out: Path,
    topic_filter: str | None,
    count: int | None,
    duration: float | None,
) -> None:
    """Record every message on a topic filter to FILE.jsonl.gz, until Ctrl-C or a bound."""
    from ingest.topic import TopicTemplate
    from simulators.recorder import record as record_messages
    from simulators.recording import BrokerError, RecordingError

    if not out.name.endswith(".jsonl.gz"):
        raise click.BadParameter(f"{out} does not end in .jsonl.gz", param_hint="--out")
    mqtt = settings_of(ctx).mqtt
    if topic_filter is None:
        topic_filter = TopicTemplate.parse(mqtt.topic).subscription
    click.echo(f"recording {topic_filter} from {mqtt.host}:{mqtt.port} to {out}", err=True)
    started = time.monotonic()
    try:
        written = record_messages(
            mqtt.host,
            mqtt.port,
            topic_filter,
            out=out,
            count=count,
            duration=duration,
            username=mqtt.username,
            password=_password(mqtt),
            tls=_tls(mqtt),
        )
    except (RecordingError, BrokerError) as exc:
        raise MeshwatchError(str(exc)) from None
    seconds = time.monotonic() - started
    rate = written / seconds if seconds > 0 else 0.0
    click.echo(f"recorded {written} messages in {seconds:.2f} s ({rate:,.0f} messages/s) to {out}")


@click.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["auto", "recording", "skab", "csv"]),
    default="auto",
    show_default=True,
    help="auto: .gz is a recording, a ';' header starting with datetime is SKAB, else csv.",
)
@click.option("--site", default=None, help="Datasets: site ID [default: skab or csv].")
@click.option("--asset", default=None, help="Datasets: asset ID [default: <dir>-<file stem>].")
@click.option("--kind", default=None, help="Datasets: the payloads' asset kind.")
@click.option(
    "--topic",
    default=None,
    help="Datasets: topic template with {site} and {asset} [default: mqtt.topic].",
)
@click.option("--timestamp-column", default="timestamp", show_default=True, help="csv only.")
@click.option("--label-column", default="label", show_default=True, help="csv only.")
@click.option("--delimiter", default=",", show_default=True, help="csv only.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Divide the original spacing by this; 0: as fast as possible.",
)
@click.option("--loop", is_flag=True, help="Start again after the last message, until Ctrl-C.")
@click.option("--skip-bad", is_flag=True, help="Skip bad lines or rows (counted) and go on.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def replay(
    ctx: click.Context,
    files: tuple[Path, ...],
    file_format: str,
    site: str | None,
    asset: str | None,
    kind: str | None,
    topic: str | None,
    timestamp_column: str,
    label_column: str,
    delimiter: str,
    speed: float,
    loop: bool,
    skip_bad: bool,
    no_progress: bool,
) -> None:
    """Publish recordings or labelled datasets (SKAB, CSV) with their original spacing.

    Files are replayed one after the other, each starting where the previous ended; a
    directory stands for its *.jsonl.gz and *.csv files. A recording is republished exactly:
    topics, payload bytes, QoS and retain flags.
    """
    from collections.abc import Iterable

    from simulators import datasets
    from simulators.recording import (
        BrokerError,
        Recorded,
        Recording,
        RecordingError,
        read_recording,
    )
    from simulators.replayer import BackToBack
    from simulators.replayer import replay as replay_messages

    mqtt = settings_of(ctx).mqtt
    template = topic if topic is not None else mqtt.topic
    skipped: list[RecordingError] = []
    counts: list[tuple[Path, Recording]] = []
    try:
        streams: list[Iterable[Recorded]] = []
        dataset_rows = 0
        for path in _expand(files):
            fmt = datasets.detect_format(path) if file_format == "auto" else file_format
            if fmt == "recording":
                recording = read_recording(path, skip_bad=skip_bad)
                counts.append((path, recording))
                streams.append(recording)
                continue
            on_bad = skipped.append if skip_bad else None
            if fmt == "skab":
                rows = datasets.skab_messages(
                    path, site=site, asset=asset, kind=kind, topic=template, on_bad=on_bad
                )
            else:
                rows = datasets.csv_messages(
                    path,
                    site=site,
                    asset=asset,
                    kind=kind,
                    topic=template,
                    timestamp_column=timestamp_column,
                    label_column=label_column,
                    delimiter=delimiter,
                    on_bad=on_bad,
                )
            dataset_rows += len(rows)
            streams.append(rows)
        total = None if counts else dataset_rows
        summary = replay_messages(
            BackToBack(streams),
            mqtt.host,
            mqtt.port,
            speed=speed,
            loop=loop,
            progress=not no_progress,
            total=total,
            username=mqtt.username,
            password=_password(mqtt),
            tls=_tls(mqtt),
        )
    except (RecordingError, BrokerError) as exc:
        raise MeshwatchError(str(exc)) from None
    for path, recording in counts:
        if recording.skipped:
            skipped.extend(recording.problems)
            click.echo(f"{path}: skipped {recording.skipped} bad lines", err=True)
    for error in skipped[:10]:
        click.echo(f"skipped: {error}", err=True)
    click.echo(f"replayed {summary}")


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, with each directory's recordings and CSV files (sorted) in its place."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.rglob("*.jsonl.gz"), *path.rglob("*.csv")])
            if not found:
                raise MeshwatchError(f"{path}: no .jsonl.gz or .csv files in this directory")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise MeshwatchError(f"{path}: no such file or directory")
    return files
