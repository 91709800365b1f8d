"""What ``meshwatch status`` and ``meshwatch silence list`` print: tables and short times.

The CLI gets the documents from `meshwatch.remote` (health messages, silences as the pipeline
replies with them) and prints them with these. Fields a document lacks show as ``-``: the
payloads come from another process and may be older or newer than this code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from common.timestamps import TimestampError, parse_rfc3339

#: The health statuses of docs/design.md §3, in the order the footer counts them.
STATUSES = ("ok", "warning", "critical", "offline", "maintenance")
_STYLES = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "offline": "magenta",
    "maintenance": "blue",
    "active": "green",
    "pending": "yellow",
    "expired": "dim",
}
# Units of a relative time, largest first (s).
_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def short_time(text: object) -> str:
    """An RFC 3339 time as ``YYYY-MM-DD HH:MM:SSZ`` in UTC; anything else as it is.

    Examples
    --------
    >>> short_time("2026-11-25T15:00:00.250+01:00")
    '2026-11-25 14:00:00Z'
    >>> short_time(None)
    '-'
    """
    moment = _parse(text)
    if moment is None:
        return "-" if text is None else str(text)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def ago(text: object, now: float) -> str:
    """How long before `now` (Unix seconds) an RFC 3339 time was: ``5m ago``, ``in 2h``.

    Examples
    --------
    >>> now = datetime(2026, 11, 25, 14, 5, tzinfo=UTC).timestamp()
    >>> ago("2026-11-25T14:00:00Z", now), ago("2026-11-25T16:05:00Z", now), ago("x", now)
    ('5m ago', 'in 2h', '')
    """
    moment = _parse(text)
    if moment is None:
        return ""
    seconds = now - moment.timestamp()
    size = abs(seconds)
    unit, length = next(((u, n) for u, n in _UNITS if size >= n), _UNITS[-1])
    amount = f"{int(size // length)}{unit}"
    return f"in {amount}" if seconds < 0 else f"{amount} ago"


def health_table(fleet: Sequence[Mapping[str, Any]], now: float) -> Table:
    """One row per asset: site, asset, kind, status (coloured), score, since, alerts, reason."""
    table = Table(title="fleet health")
    for column in ("site", "asset", "kind", "status", "score", "since", "alerts", "reason"):
        table.add_column(column, overflow="fold", justify="right" if column == "score" else "left")
    for health in fleet:
        status = str(health.get("status", "-"))
        score = health.get("score")
        since = health.get("since")
        when = short_time(since)
        relative = ago(since, now)
        table.add_row(
            _text(health.get("site")),
            _text(health.get("asset")),
            _text(health.get("kind")),
            styled(status),
            Text(_score(score)),
            Text(f"{when} ({relative})" if relative else when),
            alerts_cell(health.get("alerts"), now),
            _text(health.get("reason")),
        )
    return table


def status_counts(fleet: Sequence[Mapping[str, Any]]) -> str:
    """The footer: how many assets, and how many in each status.

    Examples
    --------
    >>> status_counts([{"status": "ok"}, {"status": "critical"}, {"status": "ok"}])
    '3 assets: ok 2, critical 1'
    """
    counts = Counter(str(h.get("status", "-")) for h in fleet)
    order = [s for s in STATUSES if s in counts] + sorted(set(counts) - set(STATUSES))
    noun = "asset" if len(fleet) == 1 else "assets"
    return f"{len(fleet)} {noun}: " + ", ".join(f"{s} {counts[s]}" for s in order)


def silence_table(silences: Sequence[Mapping[str, Any]]) -> Table:
    """One row per silence: id, matchers, when it repeats, starts, ends, by, comment, status."""
    table = Table(title="silences")
    for column in ("id", "matchers", "every", "starts", "ends", "by", "comment", "status"):
        table.add_column(column, overflow="fold")
    for silence in silences:
        matchers = silence.get("matchers")
        table.add_row(
            _text(silence.get("id")),
            _text(" ".join(map(str, matchers)) if isinstance(matchers, list) else matchers),
            _text(silence.get("every")),
            Text(short_time(silence.get("starts_at"))),
            Text(short_time(silence.get("ends_at"))),
            _text(silence.get("created_by")),
            _text(silence.get("comment")),
            styled(str(silence.get("status", "-"))),
        )
    return table


def _score(score: object) -> str:
    if isinstance(score, bool) or not isinstance(score, int | float):
        return "-"
    return f"{score:.2f}"


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        ns = parse_rfc3339(text)
    except TimestampError:
        return None
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC)


def _text(value: object) -> Text:
    """A cell from another process's data: plain text, never read as rich markup."""
    return Text("-" if value is None or value == "" else str(value))


def styled(status: str) -> Text:
    """A status word in its colour (ok green, critical red, ...)."""
    return Text(status, style=_STYLES.get(status, ""))


def alerts_cell(alerts: object, now: float) -> Text:
    """The open alerts of a health message: each rule, marked when flapping or shelved.

    A flapping alert (held as one by flap damping) reads ``rule (flapping)``; a shelved one
    ``rule (shelved by WHO, ends in 2h)``, so a muted alert is not mistaken for one being
    handled. The ``alerts`` list, and each mark, is optional in a health message.

    Examples
    --------
    >>> now = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()
    >>> alerts_cell([{"rule": "hot"}, {"rule": "anomaly", "flapping": True}], now).plain
    'anomaly (flapping), hot'
    >>> alerts_cell([{"rule": "anomaly", "shelved_until": "2026-11-25T14:00:00Z",
    ...               "shelved_by": "ana"}], now).plain
    'anomaly (shelved by ana, ends in 2h)'
    >>> alerts_cell(None, now).plain
    '-'
    """
    if not isinstance(alerts, list) or not alerts:
        return Text("-")
    entries = sorted({_alert_entry(a, now) for a in alerts})
    cell = Text()
    for i, (rule, marks) in enumerate(entries):
        if i:
            cell.append(", ")
        cell.append(rule)
        if marks:
            cell.append(f" ({', '.join(marks)})", style="yellow")
    return cell


def _alert_entry(alert: object, now: float) -> tuple[str, tuple[str, ...]]:
    """An entry of the ``alerts`` list as its rule and its marks (flapping, shelved)."""
    if not isinstance(alert, dict):
        return "?", ()
    marks = []
    if alert.get("flapping") is True:
        marks.append("flapping")
    until = alert.get("shelved_until")
    if until is not None:
        by = alert.get("shelved_by")
        shelf = "shelved" if by is None else f"shelved by {by}"
        relative = ago(until, now)
        if relative.startswith("in "):
            marks.append(f"{shelf}, ends {relative}")
        elif relative:
            marks.append(f"{shelf}, ended {relative}")
        else:
            marks.append(f"{shelf} until {until}")
    return str(alert.get("rule", "?")), tuple(marks)
