"""Answering "what happened": episodes of a window, read from the store, within one reply.

`read` asks a `ingest.query.StoreReader` for the window's ``alert`` records (narrowed by the
equality matchers on tags), the firing records of episodes that began before it, their
``alert_action`` and ``notification`` records and the silences recorded up to 30 days before
it, and rebuilds the episodes (`alerts.history.episodes`). `answer` makes the ``history``
command's reply: the newest episodes first, as many as `limit` and the reply's byte budget
allow, the count of the rest, and the summary (`alerts.history.summary`) over all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from alerts.base import Alert, State
from alerts.history.episodes import Episode, build
from alerts.history.records import ACTION, NOTIFICATION
from alerts.history.summary import summary
from alerts.matchers import Matcher
from common.timestamps import format_rfc3339
from ingest.query import Row, StoreReader

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
#: Silences are looked for this long before the window: maintenance is planned days ahead,
#: and the alert state keeps resolved alerts as long (`alerts.state.KEEP_RESOLVED_SECONDS`).
SILENCE_LOOKBACK_NS = 30 * _DAY_NS
#: Episodes a reply lists by default, and at most.
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
#: Bytes of episodes one reply carries at most: one MQTT message, well under any broker's
#: ``message_size_limit`` and quick to send; a large week is narrowed with matchers instead.
REPLY_BUDGET = 256 * 1024
#: Rows of the per-asset summary a reply carries at most (the busiest first).
SUMMARY_ROWS = 200
#: Records a walk back to an episode's firing record reads at most: its changes of level
#: and the last episodes' records lie between.
_WALK_BACK = 16
#: The tags the store is asked to select on: not ``severity``, which an escalating alert's
#: records change within one episode (its severity is the highest it reached, judged by
#: `alerts.history.episodes.build` with the other matchers).
_OTHER_TAGS = ("site", "asset", "rule")


def read(
    reader: StoreReader,
    *,
    start: int,
    matchers: Sequence[Matcher] = (),
    open_alerts: Iterable[Alert] = (),
) -> list[Episode]:
    """The episodes that fired or ended since `start` (ns), or are still open, oldest first.

    `open_alerts` are the pipeline's firing alerts: one that fired before the window is
    still part of it, though the window holds no record of it.
    """
    alert_rows = reader.rows("alert", start=start, tags=_equalities(matchers, _OTHER_TAGS))
    seen = {str(r.fields.get("id")) for r in alert_rows if r.fields.get("state") == "firing"}
    for alert in open_alerts:
        if alert.state is State.FIRING and alert.id not in seen and alert.started_at < start:
            alert_rows.append(_firing_row(alert))
            seen.add(alert.id)
    have = {(r.ts, str(r.fields.get("id"))) for r in alert_rows}
    for row in list(alert_rows):
        alert_id = str(row.fields.get("id"))
        if alert_id in seen:
            continue
        # Resolved or changed level in the window, fired before it: its firing record and
        # changes of level are among the rule's last records on the asset before (one walk
        # back; by site, asset and rule, as a change of level changes the severity tag).
        series = {tag: row.tags.get(tag, "") for tag in _OTHER_TAGS}
        before = reader.rows(
            "alert", start=0, stop=row.ts, tags=series, newest_first=True, limit=_WALK_BACK
        )
        for r in before:
            if str(r.fields.get("id")) == alert_id and (r.ts, alert_id) not in have:
                alert_rows.append(r)
                have.add((r.ts, alert_id))
        seen.add(alert_id)
    tags = _equalities(matchers, _OTHER_TAGS)
    actions = reader.rows(ACTION, start=start, tags=tags)
    notifications = reader.rows(NOTIFICATION, start=start, tags=tags)
    # Episodes that fired before the window: their earlier records, series by series.
    earlier: dict[tuple[str, ...], int] = {}
    for row in alert_rows:
        if row.ts < start and row.fields.get("state") == "firing":
            key = tuple(row.tags.get(tag, "") for tag in _OTHER_TAGS)
            earlier[key] = min(row.ts, earlier.get(key, row.ts))
    for key, fired in earlier.items():
        series = dict(zip(_OTHER_TAGS, key, strict=True))
        actions += reader.rows(ACTION, start=fired, stop=start, tags=series)
        notifications += reader.rows(NOTIFICATION, start=fired, stop=start, tags=series)
    earliest = min(earlier.values(), default=start)
    silences: list[Row] = []
    for action in ("silence", "expire"):
        silences += reader.rows(
            ACTION,
            start=earliest - SILENCE_LOOKBACK_NS,
            tags={"site": "", "asset": "", "rule": "", "action": action},
        )
    actions = [r for r in actions if r.tags.get("action") not in ("silence", "expire")]
    return build(alert_rows, actions, notifications, silences, matchers=matchers)


def answer(
    reader: StoreReader,
    *,
    now: int,
    since: float,
    matchers: Sequence[Matcher] = (),
    limit: int = DEFAULT_LIMIT,
    with_summary: bool = False,
    open_alerts: Iterable[Alert] = (),
) -> dict[str, Any]:
    """The ``history`` reply for the `since` seconds before `now` (ns, the fleet clock).

    With `with_summary`, the tallies of every episode and no episode list; otherwise the
    newest episodes first, at most `limit` and `REPLY_BUDGET` bytes of them, ``more`` saying
    how many were left out.
    """
    start = now - int(since * _NS)
    episodes = read(reader, start=start, matchers=matchers, open_alerts=open_alerts)
    reply: dict[str, Any] = {
        "since": format_rfc3339(start),
        "until": format_rfc3339(now),
        "total": len(episodes),
    }
    if with_summary:
        tallies = summary(episodes)
        reply["more_assets"] = max(0, len(tallies["assets"]) - SUMMARY_ROWS)
        tallies["assets"] = tallies["assets"][:SUMMARY_ROWS]
        reply["summary"] = tallies
        reply["episodes"] = []
        reply["more"] = 0
        return reply
    shown: list[dict[str, Any]] = []
    size = 0
    for episode in reversed(episodes):
        if len(shown) >= limit:
            break
        doc = episode.to_json(now)
        size += len(orjson.dumps(doc)) + 1
        if size > REPLY_BUDGET:
            break
        shown.append(doc)
    reply["episodes"] = shown
    reply["more"] = len(episodes) - len(shown)
    return reply


def _equalities(matchers: Sequence[Matcher], tags: Sequence[str]) -> dict[str, str]:
    """Tag values the store can select on: the matchers ``tag=value`` (the rest filter later).

    Examples
    --------
    >>> from alerts.matchers import parse_all
    >>> _equalities(parse_all(["site=lyon", "asset=~cnc-.*", "kind=oven"]), _OTHER_TAGS)
    {'site': 'lyon'}
    """
    return {m.label: m.value for m in matchers if m.op == "=" and m.label in tags and m.value}


def _firing_row(alert: Alert) -> Row:
    """An open alert's firing as the store recorded it (`alerts.messages.record`)."""
    tags = {
        "site": alert.site,
        "asset": alert.asset,
        "rule": alert.rule,
        "severity": alert.severity.value,
    }
    fields = {"state": "firing", "id": alert.id, "message": alert.message, "kind": alert.kind or ""}
    return Row("alert", tags, fields, alert.started_at)
