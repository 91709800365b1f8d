"""The routing tree: which receivers hear of an alert, and how alerts are grouped for them.

Alertmanager's semantics: an alert enters at the root and descends into the first child
whose matchers hold; a child with ``continue: true`` lets the search go on to its later
siblings, so one alert can reach several routes. A node where no child matches is the
match. Children inherit receivers, grouping and timing from their parent unless they set
their own. ``group_by: ["..."]`` (the default) makes every alert its own group.

A route may name time intervals (`alerts.timeintervals`): inside one of its
``mute_time_intervals``, or outside all of its ``active_time_intervals``, its receivers are
not told of firings (a resolution of what they heard still goes out). As in Alertmanager,
these are not inherited, and the root has none; a mute interval wins over an active one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.base import Labels
from alerts.errors import RulesError
from alerts.matchers import LABELS, Matcher, match_all, parse_all
from alerts.timeintervals import Window, resolve
from common.durations import Duration

#: Alertmanager's spelling of "group by every label": one group per alert.
EVERY_LABEL = "..."


class RouteSpec(BaseModel):
    """One node of the routing tree as written in the routes file (``route:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    matchers: list[str] = Field(default_factory=list)
    receivers: list[str] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue")
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)
    routes: list[RouteSpec] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _matchers_parse(cls, value: list[str]) -> list[str]:
        try:
            parse_all(value)
        except RulesError as exc:  # a ValueError, so the file's error names its place
            raise ValueError(str(exc)) from None
        return value

    @field_validator("group_by")
    @classmethod
    def _group_labels_exist(cls, value: list[str] | None) -> list[str] | None:
        for label in value or ():
            if label != EVERY_LABEL and label not in LABELS:
                raise ValueError(
                    f"group_by label {label!r} is unknown (labels are {', '.join(LABELS)}, "
                    f"or '...' for one group per alert)"
                )
        return value


def default_route() -> RouteSpec:
    """Every alert to the ``mqtt`` and ``log`` receivers, each alert on its own.

    No wait before the first notification; changes (a resolution) go out at most 10 s of
    event time later; a firing alert nobody acknowledged is repeated every 4 h
    (Alertmanager's default repeat interval).
    """
    return RouteSpec(
        receivers=["mqtt", "log"],
        group_by=[EVERY_LABEL],
        group_wait=0.0,
        group_interval=10.0,
        repeat_interval=4 * 3600.0,
    )


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the built tree, with everything inherited filled in.

    Examples
    --------
    >>> spec = RouteSpec.model_validate({
    ...     "receivers": ["log"], "group_by": ["..."],
    ...     "routes": [
    ...         {"matchers": ["severity=critical"], "receivers": ["pager"], "continue": True},
    ...         {"matchers": ["site=~plant-(a|b)"], "receivers": ["north"]},
    ...     ]})
    >>> root = Route.build(spec)
    >>> [r.receivers for r in root.match({"severity": "critical", "site": "plant-a"})]
    [('pager',), ('north',)]
    >>> [r.receivers for r in root.match({"severity": "warning", "site": "plant-c"})]
    [('log',)]
    """

    path: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    continue_: bool
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    children: tuple[Route, ...]
    mute_windows: tuple[Window, ...] = ()
    active_windows: tuple[Window, ...] = ()

    @classmethod
    def build(
        cls,
        spec: RouteSpec,
        parent: Route | None = None,
        path: str = "root",
        windows: Mapping[str, Window] | None = None,
    ) -> Route:
        """Build the tree below `spec`, inheriting from `parent` (the defaults at the root).

        `windows` are the config's named time intervals; a name nobody defined, or a time
        interval on the root, raises `RulesError`.
        """
        base = parent or _ROOT_DEFAULTS
        known = windows or {}
        if parent is None and (spec.mute_time_intervals or spec.active_time_intervals):
            raise RulesError(
                "the root route cannot have time intervals: put them on a child route "
                "(with matchers, or none to take every alert)"
            )
        node = cls(
            path=path,
            matchers=parse_all(spec.matchers),
            receivers=tuple(spec.receivers) or base.receivers,
            continue_=spec.continue_,
            group_by=tuple(spec.group_by) if spec.group_by is not None else base.group_by,
            group_wait=_pick(spec.group_wait, base.group_wait),
            group_interval=_pick(spec.group_interval, base.group_interval),
            repeat_interval=_pick(spec.repeat_interval, base.repeat_interval),
            children=(),
            mute_windows=resolve(spec.mute_time_intervals, known),
            active_windows=resolve(spec.active_time_intervals, known),
        )
        children = tuple(
            cls.build(child, node, f"{path}.{i}", known) for i, child in enumerate(spec.routes)
        )
        object.__setattr__(node, "children", children)
        return node

    def match(self, labels: Labels) -> list[Route]:
        """The routes an alert with these labels takes (at least one)."""
        found: list[Route] = []
        for child in self.children:
            if match_all(child.matchers, labels):
                found.extend(child.match(labels))
                if not child.continue_:
                    break
        return found or [self]

    def group_labels(self, labels: Labels) -> dict[str, str] | None:
        """The labels that name an alert's group on this route.

        None for ``["..."]`` (one group per alert); empty for ``[]`` (one group for the whole
        route, as in Alertmanager).
        """
        if EVERY_LABEL in self.group_by:
            return None
        return {k: labels.get(k, "") for k in self.group_by}

    def muted_at(self, ts: int) -> Window | None:
        """The time interval that mutes this route at event time `ts`, if one does.

        Inside a mute interval: that one. Outside every active interval: the first of them.
        """
        for window in self.mute_windows:
            if window.contains(ts):
                return window
        if self.active_windows and not any(w.contains(ts) for w in self.active_windows):
            return self.active_windows[0]
        return None

    def maintenance_window(self, labels: Labels, ts: int) -> Window | None:
        """The mute interval that has an asset (its labels) in planned maintenance at `ts`.

        Only when every route the asset's labels take is inside one of its
        ``mute_time_intervals``; active intervals mean working hours, not maintenance.
        """
        found = None
        for route in self.match(labels):
            found = next((w for w in route.mute_windows if w.contains(ts)), None)
            if found is None:
                return None
        return found

    def windows(self) -> list[Window]:
        """Every time interval the tree names (each once)."""
        seen: dict[str, Window] = {}
        for node in self.walk():
            for window in (*node.mute_windows, *node.active_windows):
                seen.setdefault(window.name, window)
        return list(seen.values())

    def walk(self) -> list[Route]:
        """Every node of the tree below and including this one."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def _pick(value: float | None, inherited: float) -> float:
    return inherited if value is None else value


_defaults = default_route()
_ROOT_DEFAULTS = Route(
    path="",
    matchers=(),
    receivers=tuple(_defaults.receivers),
    continue_=False,
    group_by=tuple(_defaults.group_by or ()),
    group_wait=_defaults.group_wait or 0.0,
    group_interval=_defaults.group_interval or 0.0,
    repeat_interval=_defaults.repeat_interval or 0.0,
    children=(),
)
