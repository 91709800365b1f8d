"""Alert rules: when an asset deserves an alert.

Three kinds, each with a name, a severity, a message template and a scope (matchers on the
asset's ``site``, ``asset`` and ``kind``):

- ``anomaly``: the model flags the asset's readings (`Observation.anomalous`), optionally
  only above a score, for ``for_readings`` consecutive readings and at least ``for``;
- ``limit``: a metric compared with a value (``spindle_temp_c > 90``) for a duration;
- ``deadman``: no reading from the asset for ``for`` (measured in event time); with ``site``
  on, a site none of whose assets reports is one site-wide alert.

A firing alert resolves after ``resolve_after`` consecutive readings without the condition
(hysteresis), so a value hovering at a threshold does not flap.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from alerts.base import Labels, Observation, Severity
from alerts.durations import Duration
from alerts.errors import RulesError
from alerts.matchers import Matcher, match_all, parse_all
from alerts.templates import MessageTemplate
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


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    severity: Severity = Severity.WARNING
    message: str | None = None
    matchers: list[str] = Field(default_factory=list)
    _scope: tuple[Matcher, ...] = PrivateAttr(default=())
    _template: MessageTemplate = PrivateAttr()

    @field_validator("name")
    @classmethod
    def _name_is_an_id(cls, value: str) -> str:
        if not ID_PATTERN.fullmatch(value):
            raise ValueError(f"rule name {value!r} must match [A-Za-z0-9_.-]{{1,64}}")
        return value

    @field_validator("message")
    @classmethod
    def _template_works(cls, value: str | None) -> str | None:
        if value is not None:
            MessageTemplate(value)
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

    def render(self, values: dict[str, object]) -> str:
        """The alert's message."""
        return self._template.render({"rule": self.name, "severity": self.severity, **values})


class AnomalyRule(_Rule):
    """The model calls the asset's readings anomalous, long enough to matter.

    Long enough is ``for_readings`` flagged readings in a row (3 by default) or, when only
    ``for`` is given, a duration of event time; given both, both must hold.

    Examples
    --------
    >>> rule = AnomalyRule(name="anomaly", for_readings=3, min_score=0.8)
    >>> AnomalyRule(name="slow", **{"for": "2m"}).for_readings
    1
    >>> obs = Observation("a", "cnc-1", "cnc-mill", 0, {}, score=0.9, anomalous=True)
    >>> rule.active(obs), rule.active(Observation("a", "cnc-1", None, 0, {}, score=0.6,
    ...                                              anomalous=True))
    (True, False)
    """

    type: Literal["anomaly"] = "anomaly"
    for_readings: int = Field(3, ge=1)
    for_: Duration = Field(0.0, alias="for")
    resolve_after: int = Field(10, ge=1)
    min_score: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _duration_alone(cls, data: Any) -> Any:
        # "N readings or a duration": a rule that gives only `for` waits for the duration.
        if isinstance(data, dict) and "for" in data and "for_readings" not in data:
            return {**data, "for_readings": 1}
        return data

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


class LimitRule(_Rule):
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
    for_: Duration = Field(0.0, alias="for")
    resolve_after: int = Field(1, ge=1)

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
    """What a fresh install watches: anomalies (a warning, critical when strong) and silence.

    A warning after 3 flagged readings in a row keeps single outliers quiet (the detectors
    already demand persistence per reading); a score of 0.8 means twice the threshold
    distance (`models.controlchart`: score = s^2 / (s^2 + t^2)), held for 10 readings, is
    what makes an asset critical and moves its work. Five minutes without data is offline.
    """
    return [
        AnomalyRule(name="anomaly", severity=Severity.WARNING, for_readings=3, resolve_after=10),
        AnomalyRule(
            name="anomaly_severe",
            severity=Severity.CRITICAL,
            for_readings=10,
            resolve_after=10,
            min_score=0.8,
            message=(
                "{asset} at {site} is failing: {top_metric} far out of its normal range "
                "for {duration} (score {value:.2f})"
            ),
        ),
        DeadmanRule(name="offline", severity=Severity.CRITICAL, **{"for": 300.0}),
    ]
