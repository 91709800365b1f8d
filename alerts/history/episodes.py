"""Episodes rebuilt from the store: what fired, when it ended, who did what, who was told.

Pure functions over `ingest.query.Row` values, so the same code serves the pipeline's
``history`` command and the web console whatever the store. An episode is one alert id:
its ``firing`` record starts it and its ``resolved`` record ends it (still open: no end);
its ``escalated`` and ``deescalated`` records are its changes of level (`alerts.escalation`).
Its ``alert_action`` records say who acknowledged, shelved or judged it and when; its
``notification`` records which receiver was told what. A silence is linked to an episode
when its matchers match the alert's labels and its window overlaps the episode (a silence
expired early ends at its expiry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from alerts.base import Severity
from alerts.errors import RulesError
from alerts.matchers import Matcher, match_all, parse_all
from alerts.timeintervals import TimeInterval, TimeIntervalSpec
from common.timestamps import format_rfc3339
from ingest.query import Row

#: Severities by name, with their order (an episode's severity is the highest it reached).
_RANKS = {s.value: s.rank for s in Severity}
#: The end of an episode still open.
_OPEN = 2**63 - 1

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Action:
    """Someone's action on an episode: ack, shelve, unshelve, feedback or silence.

    Times are event times (ns).
    """

    action: str
    by: str
    at: int
    comment: str = ""
    verdict: str | None = None
    #: A shelf's end (ns); a silence's id.
    until: int | None = None
    silence: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The action in the ``history`` reply (times RFC 3339)."""
        doc: dict[str, Any] = {"action": self.action, "by": self.by, "at": format_rfc3339(self.at)}
        if self.comment:
            doc["comment"] = self.comment
        if self.verdict is not None:
            doc["verdict"] = self.verdict
        if self.until is not None:
            doc["until"] = format_rfc3339(self.until)
        if self.silence is not None:
            doc["silence"] = self.silence
        return doc


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A firing alert's change of severity (escalated or fell back), and when (ns)."""

    severity: str
    at: int

    def to_json(self) -> dict[str, Any]:
        """The change in the ``history`` reply."""
        return {"severity": self.severity, "at": format_rfc3339(self.at)}


@dataclass(frozen=True, slots=True)
class Told:
    """One notification of an episode to one receiver: firing or resolved, and when."""

    receiver: str
    state: str
    at: int


@dataclass(slots=True)
class SilenceSpan:
    """A silence as the store recorded it: matchers, window (ns), who and why."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    by: str
    comment: str
    added_at: int
    #: A repeating silence's weekly window (None: muting all the time between start and end).
    window: TimeInterval | None = None

    def covers(self, labels: Mapping[str, str], start: int, end: int) -> bool:
        """Whether it matches these labels and its window overlaps ``[start, end]``.

        A repeating silence counts when its window held as the episode fired or resolved.
        """
        if not (self.starts_at <= end and start < self.ends_at):
            return False
        if self.window is not None:
            moments = (start,) if end == _OPEN else (start, end)
            if not any(self.window.contains(t) for t in moments):
                return False
        return match_all(self.matchers, labels)


@dataclass(slots=True)
class Episode:
    """One alert from firing to resolved, with what people did and whom it reached.

    `fired` is None when the store no longer has the firing record (pruned, or written
    before the window and not found); `resolved` is None while it is open. `severity` is the
    highest it reached; `levels`, its changes of severity after it fired.
    """

    id: str
    rule: str
    severity: str
    site: str
    asset: str
    kind: str = ""
    fired: int | None = None
    resolved: int | None = None
    message: str = ""
    actions: list[Action] = field(default_factory=list)
    told: list[Told] = field(default_factory=list)
    levels: list[LevelChange] = field(default_factory=list)

    def labels(self) -> dict[str, str]:
        """The labels matchers select on (`alerts.matchers.LABELS`)."""
        return {
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
        }

    def first(self, action: str) -> Action | None:
        """The earliest action of this kind (the acknowledgement, say)."""
        return next((a for a in self.actions if a.action == action), None)

    def verdict(self) -> str | None:
        """The last verdict given (a later one replaces an earlier one)."""
        verdicts = [a.verdict for a in self.actions if a.action == "feedback" and a.verdict]
        return verdicts[-1] if verdicts else None

    def duration(self, now: int) -> int | None:
        """Nanoseconds from firing to resolution (to `now` while open); None if unknown."""
        if self.fired is None:
            return None
        return (self.resolved if self.resolved is not None else now) - self.fired

    def to_json(self, now: int) -> dict[str, Any]:
        """The episode in the ``history`` reply (docs/design.md §4)."""
        duration = self.duration(now)
        receivers: dict[str, dict[str, Any]] = {}
        for told in self.told:
            entry = receivers.setdefault(told.receiver, {"firing": 0, "resolved": 0})
            entry[told.state] = entry.get(told.state, 0) + 1
            entry["last"] = format_rfc3339(told.at)
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "site": self.site,
            "asset": self.asset,
            "kind": self.kind,
            "fired_at": None if self.fired is None else format_rfc3339(self.fired),
            "resolved_at": None if self.resolved is None else format_rfc3339(self.resolved),
            "open": self.resolved is None,
            "duration_s": None if duration is None else round(duration / _NS, 3),
            "message": self.message,
            "levels": [change.to_json() for change in self.levels],
            "actions": [a.to_json() for a in self.actions],
            "notifications": receivers,
        }


def build(
    alerts: Iterable[Row],
    actions: Iterable[Row] = (),
    notifications: Iterable[Row] = (),
    silences: Iterable[Row] = (),
    *,
    matchers: Sequence[Matcher] = (),
) -> list[Episode]:
    """Episodes from ``alert`` rows, with their actions, notifications and silences.

    Rows may come in any order. Only episodes whose labels satisfy every matcher are kept;
    the result is oldest first (an episode without its firing record sorts by its end).

    Examples
    --------
    >>> alert = lambda ts, state: Row("alert", {"site": "s", "asset": "a", "rule": "hot",
    ...     "severity": "critical"}, {"state": state, "id": "e1"}, ts)
    >>> ack = Row("alert_action", {"site": "s", "asset": "a", "rule": "hot", "action": "ack"},
    ...           {"id": "e1", "by": "ana"}, 15)
    >>> [e] = build([alert(10, "firing"), alert(40, "resolved")], [ack])
    >>> e.fired, e.resolved, e.first("ack").by
    (10, 40, 'ana')
    """
    found: dict[str, Episode] = {}
    for row in sorted(alerts, key=lambda r: r.ts):
        _transition(found, row)
    kept = {k: e for k, e in found.items() if match_all(matchers, e.labels())}
    for row in sorted(actions, key=lambda r: r.ts):
        episode = kept.get(str(row.fields.get("id", "")))
        if episode is not None and row.tags.get("action") not in ("silence", "expire"):
            episode.actions.append(_action(row))
    for row in sorted(notifications, key=lambda r: r.ts):
        episode = kept.get(str(row.fields.get("id", "")))
        if episode is not None:
            episode.told.append(Told(row.tags["receiver"], row.tags.get("state", ""), row.ts))
    spans = silence_spans(silences)
    for episode in kept.values():
        _link_silences(episode, spans)
    return sorted(kept.values(), key=_order)


def silence_spans(rows: Iterable[Row]) -> list[SilenceSpan]:
    """Silences from their ``silence`` and ``expire`` records (an expiry ends one early).

    Records whose matchers no longer parse are skipped (they were valid when written).
    """
    spans: dict[str, SilenceSpan] = {}
    expired: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: r.ts):
        fields = row.fields
        silence_id = str(fields.get("id", ""))
        if row.tags.get("action") == "expire":
            expired[silence_id] = row.ts
            continue
        if row.tags.get("action") != "silence":
            continue
        try:
            matchers = parse_all(orjson.loads(str(fields.get("matchers", "[]"))))
            every = fields.get("every")
            window = (
                None
                if every is None
                else TimeInterval.of(TimeIntervalSpec.model_validate(orjson.loads(str(every))))
            )
        except (RulesError, orjson.JSONDecodeError, TypeError, ValueError):
            continue
        spans[silence_id] = SilenceSpan(
            silence_id,
            matchers,
            int(float(fields.get("starts_at", row.ts))),
            int(float(fields.get("ends_at", row.ts))),
            str(fields.get("by", "")),
            str(fields.get("comment", "")),
            row.ts,
            window,
        )
    for silence_id, at in expired.items():
        span = spans.get(silence_id)
        if span is not None:
            span.ends_at = min(span.ends_at, at)
    return list(spans.values())


def _transition(found: dict[str, Episode], row: Row) -> None:
    fields, tags = row.fields, row.tags
    alert_id = str(fields.get("id", ""))
    if not alert_id:
        return
    episode = found.get(alert_id)
    if episode is None:
        episode = Episode(
            alert_id,
            tags.get("rule", ""),
            tags.get("severity", ""),
            tags.get("site", ""),
            tags.get("asset", ""),
            str(fields.get("kind", "")),
        )
        found[alert_id] = episode
    state = fields.get("state")
    severity = tags.get("severity", "")
    if _RANKS.get(severity, -1) > _RANKS.get(episode.severity, -1):
        episode.severity = severity
    if state == "firing":
        if episode.fired is None or row.ts < episode.fired:
            episode.fired = row.ts
        episode.message = str(fields.get("message", "")) or episode.message
    elif state in ("escalated", "deescalated"):
        episode.levels.append(LevelChange(severity, row.ts))
        episode.message = str(fields.get("message", "")) or episode.message
    elif state == "resolved":
        episode.resolved = row.ts
        # The resolution's message says how it ended (feedback, a rule's reset).
        episode.message = str(fields.get("message", "")) or episode.message


def _action(row: Row) -> Action:
    fields = row.fields
    until = fields.get("until")
    verdict = fields.get("verdict")
    return Action(
        str(row.tags.get("action", "")),
        str(fields.get("by", "")),
        row.ts,
        str(fields.get("comment", "")),
        None if verdict is None else str(verdict),
        None if until is None else int(float(until)),
    )


def _link_silences(episode: Episode, spans: Sequence[SilenceSpan]) -> None:
    start = episode.fired if episode.fired is not None else episode.resolved
    if start is None:
        return
    end = episode.resolved if episode.resolved is not None else _OPEN
    labels = episode.labels()
    linked = [
        Action("silence", s.by, s.added_at, s.comment, until=s.ends_at, silence=s.id)
        for s in spans
        if s.covers(labels, start, end)
    ]
    if linked:
        episode.actions = sorted([*episode.actions, *linked], key=lambda a: a.at)


def _order(episode: Episode) -> int:
    if episode.fired is not None:
        return episode.fired
    return episode.resolved if episode.resolved is not None else 0
