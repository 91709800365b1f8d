"""Alert rules: when an asset deserves an alert.

Three kinds, each with a name, a severity, a message template and a scope (matchers on the
asset's ``site``, ``asset`` and ``kind``):

- ``anomaly``: the model flags the asset's readings (`Observation.anomalous`), optionally
  only above a score, for ``for_readings`` consecutive readings and at least ``for``;
- ``limit``: a metric compared with a value (``spindle_temp_c > 90``) for a duration;
- ``deadman``: no reading from the asset for ``for`` (measured in event time); with ``site``
  on, a site none of whose assets reports is one site-wide alert.

An anomaly rule may ``escalate``: its one alert rises to a higher severity while the score
is strong and falls back when it weakens (`alerts.escalation`), instead of a second rule
raising a second alert for the same event.

Anomaly and limit alerts resolve with hysteresis, so a value hovering at a threshold does
not chatter: ``resolve_after`` consecutive readings that clear the condition (for an anomaly
rule, readings scoring below ``resolve_below``: a lower level than the one it fired at), and
not before it has been firing for ``keep_firing_for``. Flap damping (``flapping``, see
`alerts.flapping`) holds an alert that still fires and resolves too often as one alert.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from alerts.base import Labels, Observation, Severity
from alerts.errors import RulesError
from alerts.escalation import Escalation, Level
from alerts.flapping import Flapping
from alerts.matchers import Matcher, match_all, parse_all
from alerts.templates import MessageTemplate, Template
from common.durations import Duration
from ingest.topic import ID_PATTERN

#: The comparisons a limit rule may use.
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(
    r"^\s*([A-Za-z0-9_.-]{1,64})\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
#: A rule's scope may name only what an asset has before any alert exists.
_SCOPE_LABELS = ("site", "asset", "kind")
_NS = 1_000_000_000
#: The default anomaly rules' minimum firing duration (s): as long as the default deadman's
#: silence, it keeps one rule on one asset to at most one firing per 5 minutes, far from
#: ISA-18.2's chattering (three a minute) even before flap damping steps in.
_KEEP_FIRING = 300.0
#: The default anomaly rules' on-delay (seconds of event time flagged without a break): long
#: enough for a machine's state change to settle in its model, short beside the minutes a
#: developing fault takes (issue 11 measured the fleet's false alarms with and without it).
_ON_DELAY = 120.0
#: The score at which a model flags a reading (`models.asset.THRESHOLD`, every detector's
#: scale): an anomaly rule without ``min_score`` fires from it, so its escalation lies above.
FLAG_SCORE = 0.5


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    severity: Severity = Severity.WARNING
    message: Template | None = None
    matchers: list[str] = Field(default_factory=list)
    _scope: tuple[Matcher, ...] = PrivateAttr(default=())
    _template: MessageTemplate = PrivateAttr()

    @field_validator("name")
    @classmethod
    def _name_is_an_id(cls, value: str) -> str:
        if not ID_PATTERN.fullmatch(value):
            raise ValueError(f"rule name {value!r} must match [A-Za-z0-9_.-]{{1,64}}")
        return value

    @field_validator("matchers")
    @classmethod
    def _scope_works(cls, value: list[str]) -> list[str]:
        try:
            matchers = parse_all(value)
        except RulesError as exc:  # a ValueError, so the file's error names its place
            raise ValueError(str(exc)) from None
        for m in matchers:
            if m.label not in _SCOPE_LABELS:
                raise ValueError(
                    f"matcher {str(m)!r}: a rule's scope can match only {', '.join(_SCOPE_LABELS)}"
                )
        return value

    def model_post_init(self, context: Any) -> None:
        """Compile the scope and the template once."""
        self._scope = parse_all(self.matchers)
        self._template = MessageTemplate(self.message or self._default_message())

    def _default_message(self) -> str:
        raise NotImplementedError

    def applies_to(self, labels: Labels) -> bool:
        """Whether this rule watches the asset with these labels."""
        return match_all(self._scope, labels)

    def render(self, values: dict[str, object], severity: Severity | None = None) -> str:
        """The alert's message at `severity` (None: the rule's own)."""
        at = self.severity if severity is None else severity
        return self._template_at(at).render({"rule": self.name, "severity": at, **values})

    def _template_at(self, severity: Severity) -> MessageTemplate:
        """The message template of an alert at `severity`: the rule's, but for a level."""
        return self._template


class _Lasting(_Rule):
    """A rule whose alerts live through `alerts.lifecycle.advance`: anomaly and limit.

    Holds what they share: the wait before firing (``for``), the hysteresis of resolving
    (``resolve_after``), the minimum firing duration (``keep_firing_for``) and flap damping
    (``flapping``; ``false`` or ``null`` turns it off).
    """

    for_: Duration = Field(0.0, alias="for")
    resolve_after: int = Field(1, ge=1)
    keep_firing_for: Duration = 0.0
    flapping: Flapping | None = Field(default_factory=Flapping)

    @field_validator("flapping", mode="before")
    @classmethod
    def _on_or_off(cls, value: Any) -> Any:
        if value is False:
            return None
        return Flapping() if value is True else value

    # Properties over fields, read per reading: a pydantic private attribute would go through
    # BaseModel.__getattr__, which showed in the profile of bench/alerts_bench.py.
    @property
    def hold_ns(self) -> int:
        """``for`` in nanoseconds."""
        return int(self.for_ * _NS)

    @property
    def keep_ns(self) -> int:
        """``keep_firing_for`` in nanoseconds."""
        return int(self.keep_firing_for * _NS)

    @property
    def quiet_ns(self) -> int:
        """How long a flapping alert's condition must be quiet before it resolves (ns)."""
        return 0 if self.flapping is None else self.flapping.quiet_ns


class AnomalyRule(_Lasting):
    """The model calls the asset's readings anomalous, long enough to matter.

    Long enough is ``for_readings`` flagged readings in a row (3 by default) or, when only
    ``for`` is given, a duration of event time; given both, both must hold.

    It resolves with score hysteresis: only a reading scoring below ``resolve_below``
    (0.4 by default, on the models' scale where 0.5 is the asset's threshold) clears it, and
    ``resolve_after`` of those in a row are needed. A score hovering at the threshold
    (0.50-0.52) therefore keeps one alert firing instead of firing and resolving within
    seconds. ``resolve_below: 1`` resolves on readings that are merely not flagged.

    With ``escalate`` (`alerts.escalation.Escalation`), the alert rises to the level's
    severity while the score holds ``escalate.min_score`` and falls back below
    ``escalate.resolve_below``, keeping its id; it resolves by the rule's conditions alone.

    Examples
    --------
    >>> rule = AnomalyRule(name="anomaly", for_readings=3, min_score=0.8)
    >>> AnomalyRule(name="slow", **{"for": "2m"}).for_readings
    1
    >>> obs = Observation("a", "cnc-1", "cnc-mill", 0, {}, score=0.9, anomalous=True)
    >>> rule.active(obs), rule.active(Observation("a", "cnc-1", None, 0, {}, score=0.6,
    ...                                              anomalous=True))
    (True, False)
    >>> [rule.clears(Observation("a", "cnc-1", None, 0, {}, score=s)) for s in (0.45, 0.3)]
    [False, True]
    """

    type: Literal["anomaly"] = "anomaly"
    for_readings: int = Field(3, ge=1)
    resolve_after: int = Field(10, ge=1)
    min_score: float | None = Field(None, gt=0, le=1)
    resolve_below: float = Field(0.4, ge=0, le=1)
    escalate: Escalation | None = None

    @model_validator(mode="before")
    @classmethod
    def _duration_alone(cls, data: Any) -> Any:
        # "N readings or a duration": a rule that gives only `for` waits for the duration.
        if isinstance(data, dict) and "for" in data and "for_readings" not in data:
            return {**data, "for_readings": 1}
        return data

    @model_validator(mode="after")
    def _escalates_above(self) -> AnomalyRule:
        level = self.escalate
        if level is None:
            return self
        fires_at = FLAG_SCORE if self.min_score is None else self.min_score
        if level.min_score <= fires_at:
            what = "the flag's score" if self.min_score is None else "the rule's min_score"
            raise ValueError(
                f"escalate.min_score ({level.min_score:g}) must be above {what} "
                f"({fires_at:g}): the level is a stronger anomaly than the alert fires on"
            )
        if level.severity.rank <= self.severity.rank:
            raise ValueError(
                f"escalate.severity ({level.severity}) must be above the rule's severity "
                f"({self.severity}): escalating raises the alert's severity"
            )
        return self

    @cached_property
    def level(self) -> Level | None:
        """The escalation with the rule's on-delay and hysteresis count filled in, if any.

        Cached on the instance: the engine reads it per reading of an open episode.
        """
        if self.escalate is None:
            return None
        return Level.of(
            self.escalate,
            for_=self.for_,
            for_readings=self.for_readings,
            resolve_after=self.resolve_after,
        )

    def _template_at(self, severity: Severity) -> MessageTemplate:
        level = self.level
        if level is not None and severity is level.severity:
            return level.template
        return self._template

    def _default_message(self) -> str:
        return (
            "{asset} at {site} behaves abnormally for {duration}: "
            "{top_metric} stands out (score {value:.2f})"
        )

    def active(self, obs: Observation) -> bool:
        """The condition for one reading: flagged anomalous (and scoring ``min_score``)."""
        if not obs.anomalous or obs.warming_up:
            return False
        return self.min_score is None or (obs.score or 0.0) >= self.min_score

    def clears(self, obs: Observation) -> bool:
        """Whether a reading counts towards resolving: not active, and scoring below the level.

        An unscored reading (the model failed on it) scores 0, as its alert value does.
        """
        return not self.active(obs) and (obs.score or 0.0) < self.resolve_below


class LimitRule(_Lasting):
    """A metric past a fixed limit, whatever the model says (``spindle_temp_c > 90``).

    Write the condition in one string or as ``metric``, ``op`` and ``value``.

    Examples
    --------
    >>> rule = LimitRule(name="hot", condition="spindle_temp_c > 90", severity="critical")
    >>> rule.metric, rule.op, rule.value
    ('spindle_temp_c', '>', 90.0)
    >>> rule.active(Observation("a", "cnc-1", None, 0, {"spindle_temp_c": 91.0}))
    True
    """

    type: Literal["limit"] = "limit"
    condition: str | None = None
    metric: str = ""
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    value: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _split_condition(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("condition") is not None:
            found = _CONDITION.match(str(data["condition"]))
            if found is None:
                raise ValueError(
                    f"condition {data['condition']!r}: write it as 'metric op number', "
                    f"e.g. 'spindle_temp_c > 90' (ops: > >= < <= == !=)"
                )
            metric, op, value = found.groups()
            return {**data, "metric": metric, "op": op, "value": float(value)}
        return data

    @model_validator(mode="after")
    def _has_metric(self) -> LimitRule:
        if not self.metric:
            raise ValueError("a limit rule needs a condition, or a metric, an op and a value")
        return self

    def _default_message(self) -> str:
        return "{metric} is {value:g} ({op} {threshold:g}) for {duration} on {asset} at {site}"

    def active(self, obs: Observation) -> bool | None:
        """The condition for one reading; None when the reading lacks the metric."""
        value = obs.metrics.get(self.metric)
        if value is None:
            return None
        return OPS[self.op](value, self.value)


class DeadmanRule(_Rule):
    """No reading from an asset for ``for``: the asset is offline (and maybe its site).

    Examples
    --------
    >>> DeadmanRule(name="offline", **{"for": "5m"}).for_
    300.0
    """

    type: Literal["deadman"] = "deadman"
    severity: Severity = Severity.CRITICAL
    for_: Duration = Field(300.0, alias="for", gt=0)
    site: bool = True

    def _default_message(self) -> str:
        return "no data from {asset} at {site} for {duration}"

    def site_message(self, values: dict[str, object]) -> str:
        """The message of the site-wide alert."""
        return f"no data from any asset of site {values['site']} for {values['duration']}"


Rule = Annotated[AnomalyRule | LimitRule | DeadmanRule, Field(discriminator="type")]


def default_rules() -> list[AnomalyRule | LimitRule | DeadmanRule]:
    """What a fresh install watches: anomalies (one alert, critical when strong) and silence.

    A warning once the model has flagged the asset for 2 minutes without a break (an
    on-delay, ISA-18.2's first remedy for nuisance alarms: a machine changing state, or a
    metric brushing its threshold, does not page anyone); a score of 0.8, twice the threshold
    distance (`models.operating`: score = s^2 / (s^2 + t^2)), held as long, escalates that
    same alert to critical, which moves the asset's work. Five minutes without data is
    offline.

    Alarm hygiene (ISA-18.2, EEMUA 191): the anomaly alert fires for at least 5 minutes
    (``keep_firing_for``), and resolves only after 10 readings in a row below 0.4, a lower
    level than it fired at (flagged, at 0.5); a critical one falls back to a warning after 10
    readings in a row below 0.7 (it rose at 0.8). Both are about 0.8 of the firing distance
    from normal (0.4 is s = 0.82 t, 0.7 is s = 1.53 t of 2 t). Flap damping keeps its
    defaults (`alerts.flapping.Flapping`).
    """
    return [
        AnomalyRule(
            name="anomaly",
            severity=Severity.WARNING,
            for_readings=1,
            for_=_ON_DELAY,
            resolve_after=10,
            resolve_below=0.4,
            keep_firing_for=_KEEP_FIRING,
            escalate=Escalation(min_score=0.8, resolve_below=0.7, severity=Severity.CRITICAL),
        ),
        DeadmanRule(name="offline", severity=Severity.CRITICAL, **{"for": 300.0}),
    ]
