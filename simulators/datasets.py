"""Labelled datasets as messages to replay: SKAB files and the generic CSV of ``evaluate``.

One file is one asset's stream. Each row becomes one DESIGN.md telemetry message::

    plant/{site}/{asset}/telemetry  {"ts": "2020-03-09T10:14:33.000Z", "kind": "pump",
                                     "metrics": {"Accelerometer1RMS": 0.0265878, ...}}

with the row's time as the message's time (`Recorded.t`), so a replay keeps the data's
spacing. The columns follow ``meshwatch evaluate``'s conventions (``models/datasets.py``; this
is a re-implementation, simulators import nothing of the pipeline):

- SKAB: ``;``-separated, ``datetime`` column, metric columns, then ``anomaly`` and
  ``changepoint`` labels (absent from ``anomaly-free.csv``). Other columns are unknown and an
  error, so a file that is not SKAB is not replayed as SKAB.
- Generic CSV: a timestamp column (RFC 3339 / ISO 8601, UTC when no zone is given, or Unix
  epoch seconds, ms, µs or ns by magnitude), an optional 0/1 label column, every other column a
  metric.
- Labels and changepoints are not metrics. A metric's name is its column name with every
  character outside ``[A-Za-z0-9_.-]`` replaced by ``_`` (``Volume Flow RateRMS`` becomes
  ``Volume_Flow_RateRMS``). An empty cell leaves that metric out of the row's reading.
- Rows are put in time order (stably) when the file is not.

Site and asset default from the file name (`default_ids`): the asset is
``<parent directory>-<file stem>`` (``valve1/0.csv`` gives ``valve1-0``), the site the
format's name (``skab`` or ``csv``); characters outside ``[A-Za-z0-9_.-]`` become ``_``.

A bad file raises `RecordingError` naming the file, the line and the problem; with an
``on_bad`` callback a bad *row* is reported to it and skipped instead (a bad header never is).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from common.timestamps import format_rfc3339
from simulators.recording import Recorded, RecordingError

DEFAULT_TOPIC = "plant/{site}/{asset}/telemetry"
SKAB_TIMESTAMP = "datetime"
SKAB_LABELS = ("anomaly", "changepoint")
SKAB_METRICS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
# DESIGN.md: a reading carries 1 to 64 metrics, IDs are at most 64 characters.
_MAX_METRICS = 64
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OnBad = Callable[[RecordingError], None]


def metric_name(column: str) -> str:
    """A column name as a valid metric name (the rule of ``meshwatch evaluate``).

    Examples
    --------
    >>> metric_name("Volume Flow RateRMS"), metric_name("temp (°C)")
    ('Volume_Flow_RateRMS', 'temp___C_')
    """
    return _NOT_ID.sub("_", column.strip())[:64] or "_"


def default_ids(path: Path, fmt: str) -> tuple[str, str]:
    """The (site, asset) a dataset file is replayed as when no flag names them.

    Examples
    --------
    >>> default_ids(Path("data/skab/valve1/0.csv"), "skab")
    ('skab', 'valve1-0')
    >>> default_ids(Path("line 3.csv"), "csv")
    ('csv', 'line_3')
    """
    stem = path.name.removesuffix(".csv")
    asset = f"{path.parent.name}-{stem}" if path.parent.name else stem
    return fmt, metric_name(asset)


def parse_time(text: str) -> int:
    """A timestamp cell as nanoseconds since the epoch; `ValueError` when it is none.

    Examples
    --------
    >>> parse_time("2020-03-09 10:14:33"), parse_time("1583748873.5")
    (1583748873000000000, 1583748873500000000)
    >>> parse_time("1583748873500")  # ms, by magnitude
    1583748873500000000
    """
    try:
        number = float(text)
    except ValueError:
        pass
    else:  # DESIGN.md's rule: seconds; above 1e11 ms, above 1e14 µs, above 1e17 ns
        if not math.isfinite(number):
            raise ValueError(f"timestamp {text!r} is not a time")
        if number > 1e17:
            return round(number)
        scale = 1e3 if number > 1e14 else 1e6 if number > 1e11 else 1e9
        return round(number * scale / 1e3) * 1000  # microseconds: below, a double is noise
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not RFC 3339 or an epoch number") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def skab_messages(
    path: Path,
    *,
    site: str | None = None,
    asset: str | None = None,
    kind: str | None = None,
    topic: str = DEFAULT_TOPIC,
    on_bad: OnBad | None = None,
) -> list[Recorded]:
    """The rows of a SKAB file as telemetry messages, in time order.

    Parameters
    ----------
    path
        A SKAB CSV (``valve1/0.csv``, ``anomaly-free/anomaly-free.csv``, ...).
    site, asset
        IDs in the topic; default from the file name (`default_ids`).
    kind
        The payloads' ``kind`` (none when not given).
    topic
        Topic template with ``{site}`` and ``{asset}``.
    on_bad
        Called with each bad row's error, which is then skipped; without it one raises.
    """
    return csv_messages(
        path,
        site=site if site is not None else default_ids(path, "skab")[0],
        asset=asset,
        kind=kind,
        topic=topic,
        timestamp_column=SKAB_TIMESTAMP,
        label_column=None,
        ignore=SKAB_LABELS,
        delimiter=";",
        known=(SKAB_TIMESTAMP, *SKAB_METRICS, *SKAB_LABELS),
        on_bad=on_bad,
    )


def csv_messages(
    path: Path,
    *,
    site: str | None = None,
    asset: str | None = None,
    kind: str | None = None,
    topic: str = DEFAULT_TOPIC,
    timestamp_column: str = "timestamp",
    label_column: str | None = "label",
    delimiter: str = ",",
    ignore: Sequence[str] = (),
    known: Sequence[str] | None = None,
    on_bad: OnBad | None = None,
) -> list[Recorded]:
    r"""The rows of a generic labelled CSV as telemetry messages, in time order.

    Parameters
    ----------
    path, site, asset, kind, topic, on_bad
        As in `skab_messages` (site defaults to ``csv``).
    timestamp_column
        The column of the row times (required).
    label_column
        The 0/1 label column, left out of the metrics; it may be absent.
    delimiter
        The field separator.
    ignore
        Further columns that are not metrics (when present).
    known
        When given, the only columns the header may have: any other is an error.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "press.csv"
    >>> _ = path.write_text("timestamp,temp (C),label\n1583748873,61.5,0\n")
    >>> [message] = csv_messages(path, site="s1")
    >>> message.topic
    'plant/s1/tmp...-press/telemetry'
    >>> message.payload
    b'{"ts":"2020-03-09T10:14:33.000Z","metrics":{"temp__C_":61.5}}'
    """
    default_site, default_asset = default_ids(path, "csv")
    site = site if site is not None else default_site
    asset = asset if asset is not None else default_asset
    for name, value in (("site", site), ("asset", asset)):
        if not _ID.fullmatch(value):
            raise RecordingError(path, f"{name} {value!r} is not an ID ([A-Za-z0-9_.-]{{1,64}})")
    if "{site}" not in topic or "{asset}" not in topic:
        raise RecordingError(path, f"topic template {topic!r} needs {{site}} and {{asset}}")
    topic_name = topic.replace("{site}", site).replace("{asset}", asset)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise RecordingError(path, exc.strerror or str(exc)) from None
    with handle:
        rows = list(
            _rows(path, handle, delimiter, timestamp_column, label_column, ignore, known, on_bad)
        )
    if not rows:
        raise RecordingError(path, "no data rows")
    rows.sort(key=lambda row: row[0])  # stable: rows with equal times keep their order
    messages = []
    for ns, metrics in rows:
        doc: dict[str, object] = {"ts": format_rfc3339(ns)}
        if kind is not None:
            doc["kind"] = kind
        doc["metrics"] = metrics
        messages.append(Recorded(ns // 1000 / 1e6, topic_name, 1, False, orjson.dumps(doc)))
    return messages


def _rows(
    path: Path,
    handle: IO[str],
    delimiter: str,
    timestamp_column: str,
    label_column: str | None,
    ignore: Sequence[str],
    known: Sequence[str] | None,
    on_bad: OnBad | None,
) -> Iterator[tuple[int, dict[str, float]]]:
    reader = csv.reader(handle, delimiter=delimiter)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise RecordingError(path, "empty file")
        metrics = _metric_columns(path, header, timestamp_column, label_column, ignore, known)
        t_at = header.index(timestamp_column)
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            try:
                yield _row(record, header, t_at, metrics)
            except ValueError as exc:
                error = RecordingError(path, str(exc), line)
                if on_bad is None:
                    raise error from None
                on_bad(error)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RecordingError(path, f"not a CSV file: {exc}", line) from None


def _metric_columns(
    path: Path,
    header: list[str],
    timestamp_column: str,
    label_column: str | None,
    ignore: Sequence[str],
    known: Sequence[str] | None,
) -> list[tuple[int, str]]:
    if known is not None:
        unknown = [c for c in header if c not in known]
        if unknown:
            raise RecordingError(
                path, f"unknown column {unknown[0]!r} (expected: {', '.join(known)})", 1
            )
    if timestamp_column not in header:
        raise RecordingError(
            path, f"no column {timestamp_column!r} (columns: {', '.join(header)})", 1
        )
    not_metrics = {timestamp_column, label_column, *ignore}
    metrics = [(i, metric_name(c)) for i, c in enumerate(header) if c not in not_metrics]
    names = [name for _, name in metrics]
    for name in names:
        if names.count(name) > 1:
            raise RecordingError(path, f"two columns give the metric name {name!r}", 1)
    if not 1 <= len(metrics) <= _MAX_METRICS:
        raise RecordingError(
            path, f"{len(metrics)} metric columns: a reading has 1 to {_MAX_METRICS}", 1
        )
    return metrics


def _row(
    record: list[str], header: list[str], t_at: int, metrics: list[tuple[int, str]]
) -> tuple[int, dict[str, float]]:
    if len(record) != len(header):
        raise ValueError(f"{len(record)} fields, the header has {len(header)} (unknown columns?)")
    ns = parse_time(record[t_at])
    values = {}
    for i, name in metrics:
        text = record[i].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"column {header[i]!r}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"column {header[i]!r}: {text!r} is not a finite number")
        values[name] = value
    if not values:
        raise ValueError("no metric values")
    return ns, values


def detect_format(path: Path) -> str:
    """``recording``, ``skab`` or ``csv``: by the name's ending and the CSV header.

    A ``.gz`` file is a recording; a CSV whose header is ``;``-separated and starts with
    SKAB's ``datetime`` column is SKAB; any other file is the generic CSV.
    """
    if path.name.endswith(".gz"):
        return "recording"
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            header = handle.readline()
    except OSError as exc:
        raise RecordingError(path, exc.strerror or str(exc)) from None
    return "skab" if header.startswith(SKAB_TIMESTAMP + ";") else "csv"
