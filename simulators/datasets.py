"""Labelled datasets as messages to replay: SKAB files and the generic CSV of ``evaluate``.

One file is one asset's stream. Each row becomes one docs/design.md §2 telemetry message::

    plant/{site}/{asset}/telemetry  {"ts": "2020-03-09T10:14:33.000Z", "kind": "pump",
                                     "metrics": {"Accelerometer1RMS": 0.0265878, ...}}

with the row's time as the message's time (`Recorded.t`), so a replay keeps the data's
spacing. The files are read by `common.datasets`, as ``meshwatch evaluate`` reads them: see
there for the SKAB and generic CSV columns. A generic CSV's label column is not a metric and
is not read.

Site and asset default from the file name (`default_ids`): the asset is
``<parent directory>-<file stem>`` (``valve1/0.csv`` gives ``valve1-0``), the site the
format's name (``skab`` or ``csv``); characters outside ``[A-Za-z0-9_.-]`` become ``_``.

A bad file raises `RecordingError` naming the file, the line and the problem; with an
``on_bad`` callback a bad *row* is reported to it and skipped instead (a bad header never is).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson

from common.datasets import (
    SKAB_TIMESTAMP,
    DatasetError,
    Row,
    metric_name,
    read_rows,
    read_skab_rows,
)
from common.timestamps import format_rfc3339
from simulators.recording import Recorded, RecordingError

DEFAULT_TOPIC = "plant/{site}/{asset}/telemetry"
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

OnBad = Callable[[RecordingError], None]


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
    read = partial(read_skab_rows, path, labelled=False)
    return _messages(path, "skab", read, site, asset, kind, topic, on_bad)


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
    not_metrics = () if label_column is None else (label_column,)
    read = partial(
        read_rows, path, timestamp_column=timestamp_column, delimiter=delimiter, ignore=not_metrics
    )
    return _messages(path, "csv", read, site, asset, kind, topic, on_bad)


def _messages(
    path: Path,
    fmt: str,
    read: Callable[..., list[Row]],
    site: str | None,
    asset: str | None,
    kind: str | None,
    topic: str,
    on_bad: OnBad | None,
) -> list[Recorded]:
    """The rows that ``read(on_bad=...)`` gives, as messages on the topic of site and asset."""
    default_site, default_asset = default_ids(path, fmt)
    site = site if site is not None else default_site
    asset = asset if asset is not None else default_asset
    for name, value in (("site", site), ("asset", asset)):
        if not _ID.fullmatch(value):
            raise RecordingError(path, f"{name} {value!r} is not an ID ([A-Za-z0-9_.-]{{1,64}})")
    if "{site}" not in topic or "{asset}" not in topic:
        raise RecordingError(path, f"topic template {topic!r} needs {{site}} and {{asset}}")
    topic_name = topic.replace("{site}", site).replace("{asset}", asset)
    report = None if on_bad is None else (lambda error: on_bad(_recording_error(error)))
    try:
        rows = read(on_bad=report)
    except DatasetError as exc:
        raise _recording_error(exc) from None
    messages = []
    for row in rows:
        doc: dict[str, object] = {"ts": format_rfc3339(row.ns)}
        if kind is not None:
            doc["kind"] = kind
        doc["metrics"] = row.metrics
        messages.append(Recorded(row.ns // 1000 / 1e6, topic_name, 1, False, orjson.dumps(doc)))
    return messages


def _recording_error(error: DatasetError) -> RecordingError:
    """The common reader's error as the simulators' own, with the same message."""
    return RecordingError(error.path, error.problem, error.line)


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
