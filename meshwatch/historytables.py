"""What ``meshwatch alerts history`` prints: the episodes, or the weekly review's tallies.

The documents are the pipeline's ``history`` reply (docs/design.md §4); a field a document
lacks shows as ``-``, since the reply comes from another process, older or newer than this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from common.durations import format_duration
from meshwatch.tables import short_time, styled

_SEVERITY_STATUS = {"critical": "critical", "warning": "warning", "info": "ok"}


def episodes_table(episodes: Sequence[Mapping[str, Any]]) -> Table:
    """One row per episode, newest first: when, how long, what, who did what, who was told."""
    table = Table(title="alert history")
    columns = ("fired", "resolved", "duration", "site/asset", "rule", "severity", "who", "told")
    for column in columns:
        table.add_column(
            column, overflow="fold", justify="right" if column == "duration" else "left"
        )
    for episode in episodes:
        open_ = episode.get("open") is True
        severity = str(episode.get("severity", "-"))
        table.add_row(
            Text(short_time(episode.get("fired_at"))),
            Text("open", style="bold") if open_ else Text(short_time(episode.get("resolved_at"))),
            Text(_duration(episode.get("duration_s")) + (" (open)" if open_ else "")),
            Text(f"{episode.get('site', '-')}/{episode.get('asset', '-')}"),
            Text(str(episode.get("rule", "-"))),
            Text(
                severity + levels(episode.get("levels")),
                style=styled(_SEVERITY_STATUS.get(severity, "")).style,
            ),
            Text(who(episode.get("actions"))),
            Text(told(episode.get("notifications"))),
        )
    return table


def levels(changes: object) -> str:
    """An episode's changes of severity after it fired, a line each (none: nothing).

    The episode's severity is the highest it reached; these say when it rose and fell.

    Examples
    --------
    >>> print("critical" + levels([{"severity": "critical", "at": "2026-11-25T10:14:02.000Z"},
    ...                            {"severity": "warning", "at": "2026-11-25T10:31:40.000Z"}]))
    critical
    → critical 2026-11-25 10:14:02Z
    → warning 2026-11-25 10:31:40Z
    """
    if not isinstance(changes, list):
        return ""
    return "".join(
        f"\n→ {change.get('severity', '-')} {short_time(change.get('at'))}"
        for change in changes
        if isinstance(change, dict)
    )


def who(actions: object) -> str:
    """The actions of an episode, one a line: ``ack ana 10:14:02Z "on it"``.

    Examples
    --------
    >>> print(who([{"action": "ack", "by": "ana", "at": "2026-11-25T10:14:02.000Z"},
    ...            {"action": "feedback", "by": "bob", "at": "2026-11-25T11:00:00.000Z",
    ...             "verdict": "normal", "comment": "runs warm"}]))
    ack ana 2026-11-25 10:14:02Z
    feedback normal bob 2026-11-25 11:00:00Z "runs warm"
    """
    if not isinstance(actions, list) or not actions:
        return "-"
    lines = []
    for action in actions:
        if not isinstance(action, dict):
            continue
        kind = str(action.get("action", "?"))
        if action.get("verdict"):
            kind += f" {action['verdict']}"
        line = f"{kind} {action.get('by') or '-'} {short_time(action.get('at'))}"
        if action.get("until") and kind in ("shelve", "silence"):
            line += f" until {short_time(action['until'])}"
        if action.get("comment"):
            line += f' "{action["comment"]}"'
        lines.append(line)
    return "\n".join(lines) or "-"


def told(notifications: object) -> str:
    """Notifications per receiver: ``mqtt 2 (1 resolved)``, one receiver a line.

    Examples
    --------
    >>> print(told({"mqtt": {"firing": 2, "resolved": 1}, "log": {"firing": 1, "resolved": 0}}))
    log 1
    mqtt 3 (1 resolved)
    """
    if not isinstance(notifications, dict) or not notifications:
        return "-"
    lines = []
    for receiver, counts in sorted(notifications.items()):
        if not isinstance(counts, dict):
            continue
        firing, resolved = int(counts.get("firing", 0)), int(counts.get("resolved", 0))
        lines.append(
            f"{receiver} {firing + resolved}" + (f" ({resolved} resolved)" if resolved else "")
        )
    return "\n".join(lines) or "-"


def summary_table(title: str, tallies: Sequence[Mapping[str, Any]]) -> Table:
    """One row per asset or rule: fired, false alarms, faults, MTTA, MTTR."""
    table = Table(title=title)
    table.add_column(title.split()[-1].rstrip("s"), overflow="fold")
    for column in ("fired", "false alarms", "faults", "acked", "MTTA", "resolved", "MTTR"):
        table.add_column(column, justify="right")
    for t in tallies:
        table.add_row(
            Text(str(t.get("key", "-"))),
            *(Text(str(t.get(name, "-"))) for name in ("fired", "false_alarms", "faults", "acked")),
            Text(_duration(t.get("mtta_s"))),
            Text(str(t.get("resolved", "-"))),
            Text(_duration(t.get("mttr_s"))),
        )
    return table


def footer(reply: Mapping[str, Any]) -> str:
    """How many episodes, since when, and what to do when some were left out.

    Examples
    --------
    >>> footer({"total": 120, "episodes": [{}] * 100, "more": 20,
    ...         "since": "2026-11-18T10:00:00.000Z", "until": "2026-11-25T10:00:00.000Z"})
    '120 episodes from 2026-11-18 10:00:00Z to 2026-11-25 10:00:00Z; 20 more not shown: narrow \
with matchers or --since, or raise --limit'
    """
    total = reply.get("total", 0)
    noun = "episode" if total == 1 else "episodes"
    line = (
        f"{total} {noun} from {short_time(reply.get('since'))} to {short_time(reply.get('until'))}"
    )
    more = reply.get("more", 0)
    if more:
        line += f"; {more} more not shown: narrow with matchers or --since, or raise --limit"
    return line


def _duration(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    return format_duration(float(seconds))
