"""An anomaly alert's escalation: one alert per episode whose severity rises and falls.

Kapacitor's alert node has levels (warn, crit) on one alert, and PagerDuty changes the
severity of one incident; so does an anomaly rule with ``escalate``: its alert fires at the
rule's severity and, while the model's score stays at ``min_score`` or above for the level's
on-delay (``for``, ``for_readings``), it escalates to the level's severity (critical by
default) under the same id. It falls back to the rule's severity after ``resolve_after``
readings in a row scoring below ``resolve_below`` (hysteresis, as the rule's own resolving).
A level change is a change of the alert: it is saved, recorded and notified (once each way),
and the alert's current severity is what routes, inhibits and colours the health map. The
alert still resolves by the rule's own conditions, whatever its level.

`Escalation` is the config; `Level` is it with what it takes from its rule filled in, and
`climb` counts one reading of an open episode towards a level change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.base import Severity
from alerts.templates import MessageTemplate, Template
from common.durations import Duration

if TYPE_CHECKING:
    from alerts.lifecycle import Episode

_NS = 1_000_000_000
#: The message of an escalated anomaly alert unless the level sets one.
FAILING_MESSAGE = (
    "{asset} at {site} is failing: {top_metric} far out of its normal range "
    "for {duration} (score {value:.2f})"
)


class Escalation(BaseModel):
    """An anomaly rule's ``escalate:`` block: the level its alert rises to when strong.

    ``for``, ``for_readings`` and ``resolve_after`` are the rule's own unless given.

    Examples
    --------
    >>> Escalation(min_score=0.8, resolve_below=0.7).severity
    <Severity.CRITICAL: 'critical'>
    >>> Escalation(min_score=0.8, resolve_below=0.8)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Escalation
      Value error, escalate.resolve_below (0.8) must be below escalate.min_score (0.8): \
a score between them holds the level (hysteresis) ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    min_score: float = Field(gt=0, le=1)
    resolve_below: float = Field(ge=0, le=1)
    for_: Duration | None = Field(None, alias="for")
    for_readings: int | None = Field(None, ge=1)
    resolve_after: int | None = Field(None, ge=1)
    severity: Severity = Severity.CRITICAL
    message: Template | None = None

    @model_validator(mode="after")
    def _hysteresis(self) -> Escalation:
        if self.resolve_below >= self.min_score:
            raise ValueError(
                f"escalate.resolve_below ({self.resolve_below:g}) must be below "
                f"escalate.min_score ({self.min_score:g}): a score between them holds the "
                f"level (hysteresis)"
            )
        return self


@dataclass(frozen=True, slots=True)
class Level:
    """An escalation with its rule's defaults filled in, as the engine reads it per reading.

    Parameters
    ----------
    severity
        The alert's severity at this level.
    min_score, resolve_below
        Scores at or above `min_score` count towards rising; below `resolve_below`, towards
        falling back.
    hits, hold_ns
        Readings in a row at `min_score`, and event time (ns), before the alert rises.
    resolve_after
        Readings in a row below `resolve_below` before it falls back.
    template
        Its message.
    """

    severity: Severity
    min_score: float
    resolve_below: float
    hits: int
    hold_ns: int
    resolve_after: int
    template: MessageTemplate

    @classmethod
    def of(
        cls, escalation: Escalation, *, for_: float, for_readings: int, resolve_after: int
    ) -> Level:
        """`escalation`, what it leaves unset taken from its rule's on-delay and hysteresis."""
        hold = for_ if escalation.for_ is None else escalation.for_
        return cls(
            escalation.severity,
            escalation.min_score,
            escalation.resolve_below,
            for_readings if escalation.for_readings is None else escalation.for_readings,
            int(hold * _NS),
            resolve_after if escalation.resolve_after is None else escalation.resolve_after,
            MessageTemplate(escalation.message or FAILING_MESSAGE),
        )


def climb(episode: Episode, level: Level, *, high: bool, score: float, ts: int) -> bool:
    """Count one reading of an open episode; return whether its alert belongs at `level` now.

    `high`: the reading is flagged and scores `level.min_score` or more. A high reading
    counts towards rising (from the first of a run, `Episode.rise_since`); any other breaks
    the run. While risen, a reading below `level.resolve_below` counts towards falling back,
    one at or above it starts that count again. Only the counts change here: whether the
    alert changes level (a pending one does not) is the caller's.

    Examples
    --------
    >>> from alerts.base import Alert, State
    >>> from alerts.lifecycle import Episode
    >>> ep = Episode(Alert("i", "r", Severity.WARNING, "s", "a", None, State.FIRING, 0, 0, ""), 0)
    >>> lvl = Level(Severity.CRITICAL, 0.8, 0.7, hits=2, hold_ns=0, resolve_after=2,
    ...             template=MessageTemplate(FAILING_MESSAGE))
    >>> [climb(ep, lvl, high=s >= 0.8, score=s, ts=t) for t, s in enumerate([0.9, 0.9])]
    [False, True]
    >>> ep.escalated = True
    >>> [climb(ep, lvl, high=s >= 0.8, score=s, ts=t) for t, s in enumerate([0.6, 0.75, 0.6])]
    [True, True, True]
    >>> climb(ep, lvl, high=False, score=0.5, ts=5)
    False
    """
    if high:
        if episode.rise == 0:
            episode.rise_since = ts
        episode.rise += 1
        episode.fall = 0
        return episode.escalated or (
            episode.rise >= level.hits and ts - episode.rise_since >= level.hold_ns
        )
    episode.rise = 0
    if not episode.escalated:
        return False
    episode.fall = episode.fall + 1 if score < level.resolve_below else 0
    return episode.fall < level.resolve_after
