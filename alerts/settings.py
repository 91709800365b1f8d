"""Settings of the alerts (``alerts:``), and loading the rules and routes files.

Rules, the routing tree, receivers and named time intervals can sit in the main config file
under ``alerts:``, or in files of their own (``alerts.rules_file`` holding ``rules:``,
``alerts.routes_file`` holding ``route:``, ``receivers:`` and ``time_intervals:``), as
Prometheus keeps rules apart from Alertmanager's routes. With none of it configured, the
defaults watch anomalies and silence, and tell the fleet over MQTT and the log. Two
receivers always exist unless redefined: ``mqtt`` and ``log``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.errors import RulesError
from alerts.health.reroute import RerouteSettings
from alerts.receivers import (
    EmailSettings,
    LogReceiverSettings,
    MqttReceiverSettings,
    WebhookSettings,
)
from alerts.route import Route, RouteSpec, default_route
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule, Rule, default_rules
from alerts.timeintervals import NamedTimeInterval, windows
from common.yamlpath import PlacedError, key_path, line_of
from ingest.topic import ID_RULE

#: Receivers that exist with no configuration: the fleet and the log hear of every alert.
BUILT_IN_RECEIVERS = ("mqtt", "log")
_KINDS = ("webhook", "email", "mqtt", "log")


class ReceiverSpec(BaseModel):
    """One named receiver: exactly one of ``webhook``, ``email``, ``mqtt``, ``log``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=f"^{ID_RULE}$")
    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None
    mqtt: MqttReceiverSettings | None = None
    log: LogReceiverSettings | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"receiver {self.name!r} needs exactly one of {', '.join(_KINDS)} "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        """Which of the four it is."""
        return next(k for k in _KINDS if getattr(self, k) is not None)


class RulesFile(BaseModel):
    """The rules file: ``rules:``, a list of rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=default_rules)


class RoutesFile(BaseModel):
    """The routes file: ``route:`` (the tree), ``receivers:`` and ``time_intervals:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: RouteSpec = Field(default_factory=default_route)
    receivers: list[ReceiverSpec] = Field(default_factory=list)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)


class AlertsSettings(BaseModel):
    """The ``alerts:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    rules_file: Path | None = None
    routes_file: Path | None = None
    rules: list[Rule] = Field(default_factory=default_rules)
    route: RouteSpec = Field(default_factory=default_route)
    receivers: list[ReceiverSpec] = Field(default_factory=list)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)
    reroute: RerouteSettings = RerouteSettings()
    # Webhook and email retries: from 1 s, doubling, to at most 5 min between attempts
    # (an endpoint down for an hour is tried about a dozen times, none of it lost).
    retry_min: float = Field(1.0, gt=0)
    retry_max: float = Field(300.0, gt=0)
    #: PostgreSQL every instance of a cluster reaches (``postgresql://host/db``), so that an
    #: asset's alert state moves with its partition (`alerts.sharedstate`); None: an instance
    #: of a RabbitMQ cluster uses ``models.checkpoints_url``, any other keeps it in alerts.db.
    state_url: str | None = Field(None, pattern=r"^postgres(ql)?://\S+$")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        found = problems(self.rules, self.route, self.receivers, self.time_intervals)
        for loc, message in found[:1]:
            raise PlacedError(message, loc)
        return self


@dataclass(frozen=True, slots=True)
class Alerting:
    """The alerting configuration in force: rules, routing tree (with its windows), receivers."""

    rules: tuple[AnomalyRule | LimitRule | DeadmanRule, ...]
    route: Route
    receivers: tuple[ReceiverSpec, ...]


Loc = list[int | str]


def problems(
    rules: Sequence[AnomalyRule | LimitRule | DeadmanRule],
    route: RouteSpec,
    receivers: Sequence[ReceiverSpec],
    time_intervals: Sequence[NamedTimeInterval] = (),
) -> list[tuple[Loc, str]]:
    """Names that repeat, and what routes name that nobody defined, with their place.

    Routes name receivers and time intervals. A place is a path into the document
    (``["rules", 1, "name"]``), as the files spell it.
    """
    found: list[tuple[Loc, str]] = []
    for what, key, names in (
        ("rule", "rules", [r.name for r in rules]),
        ("receiver", "receivers", [r.name for r in receivers]),
        ("time interval", "time_intervals", [t.name for t in time_intervals]),
    ):
        for i, name in enumerate(names):
            if name in names[:i]:
                found.append(([key, i, "name"], f"{what} names must be unique: {name!r} repeats"))
    found += _interval_problems(route, {t.name for t in time_intervals}, ["route"])
    if found:
        return found
    known = {*BUILT_IN_RECEIVERS, *(r.name for r in receivers)}
    for node in Route.build(route, windows=windows(time_intervals)).walk():
        for name in node.receivers:
            if name not in known:
                loc: Loc = ["route"]
                for step in node.path.split(".")[1:]:
                    loc += ["routes", int(step)]
                found.append(
                    (
                        [*loc, "receivers"],
                        f"route {node.path} names receiver {name!r}, which is not defined "
                        f"(receivers: {', '.join(sorted(known))})",
                    )
                )
    return found


def _interval_problems(spec: RouteSpec, known: set[str], loc: Loc) -> list[tuple[Loc, str]]:
    """Time intervals a route names that nobody defined, and any on the root route."""
    found: list[tuple[Loc, str]] = []
    for key in ("mute_time_intervals", "active_time_intervals"):
        names: list[str] = getattr(spec, key)
        if names and loc == ["route"]:
            found.append(
                ([*loc, key], "the root route cannot have time intervals: put them on a child")
            )
        for name in names:
            if name not in known:
                found.append(
                    (
                        [*loc, key],
                        f"time interval {name!r} is not defined "
                        f"(time_intervals: {', '.join(sorted(known)) or 'none'})",
                    )
                )
    for i, child in enumerate(spec.routes):
        found += _interval_problems(child, known, [*loc, "routes", i])
    return found


def load(settings: AlertsSettings) -> Alerting:
    """The configuration in force: the section, with the rules and routes files read in.

    Raises `RulesError` naming the file, the place (line and key) and the problem.
    """
    rules = list(settings.rules)
    route, receivers = settings.route, list(settings.receivers)
    intervals = list(settings.time_intervals)
    documents: dict[str, tuple[Path, yaml.Node | None]] = {}
    if settings.rules_file is not None:
        rules_file, root = _read(settings.rules_file, RulesFile)
        rules = list(rules_file.rules)
        documents["rules"] = (settings.rules_file, root)
    if settings.routes_file is not None:
        routes, root = _read(settings.routes_file, RoutesFile)
        route, receivers = routes.route, list(routes.receivers)
        intervals = list(routes.time_intervals)
        for key in ("route", "receivers", "time_intervals"):
            documents[key] = (settings.routes_file, root)
    for loc, message in problems(rules, route, receivers, intervals)[:1]:
        if str(loc[0]) not in documents:
            raise RulesError(f"alerts settings: {_place(loc)}: {message}")
        path, root = documents[str(loc[0])]
        raise RulesError(f"{path}: {_at(root, loc)}: {message}")
    return Alerting(tuple(rules), Route.build(route, windows=windows(intervals)), tuple(receivers))


def _read(path: Path, model: type[_File]) -> tuple[_File, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise RulesError(f"{path}: {line}{problem}") from None
    try:
        return model.model_validate(document or {}), root
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"] if not _is_union_tag(p)]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        raise RulesError(f"{path}: {_at(root, loc)}: {message}") from None


_File = TypeVar("_File", RulesFile, RoutesFile)
# Fields whose YAML key is a Python keyword.
_YAML_KEYS = {"for_": "for", "continue_": "continue"}


def _at(root: yaml.Node | None, loc: Sequence[int | str]) -> str:
    """``line N (rules[1].name)``, or the key path alone when the line is unknown."""
    number = line_of(root, loc, _YAML_KEYS)
    place = _place(loc)
    return f"line {number} ({place})" if number is not None else place


def _place(loc: Sequence[int | str]) -> str:
    return key_path(loc) or "top level"


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the branch of a tagged union in the location: rules.0.limit.for
    return part in ("anomaly", "limit", "deadman") or str(part).startswith("function-")
