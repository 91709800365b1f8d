"""The fleet file: sites, their assets, a seed and scheduled faults (pydantic at the boundary).

A fleet file is YAML::

    seed: 7
    sites:
      - name: berlin
        assets:
          - {id: cnc-1, kind: cnc-mill, rate: 1}
    faults:
      - {site: berlin, asset: cnc-1, type: bearing_wear, onset: 20m, develop: 20m}

Times (``onset``, ``develop``, ``duration``) are seconds after the start of the run, as numbers
or as ``"90s"``, ``"20m"``, ``"1h30m"``. `load_fleet` reports the first problem as one line
naming the file, the line and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.durations import parse_duration
from common.yamlpath import key_path, line_of
from simulators.errors import FleetError
from simulators.kinds import RANGES, ROLES, Kind

__all__ = [
    "AssetSpec",
    "FaultSpec",
    "FaultType",
    "FleetSpec",
    "Kind",
    "SiteSpec",
    "load_fleet",
    "shipped",
    "with_faults",
]

FaultType = Literal[
    "bearing_wear",
    "overheating",
    "motor_fault",
    "pressure_leak",
    "stuck_sensor",
    "sensor_drift",
    "dropouts",
    "sudden_failure",
]

_ID = r"^[A-Za-z0-9_.-]{1,64}$"  # docs/design.md §2: site and asset IDs
# Which role a fault acts on needs; None: any kind will do.
_NEEDS_ROLE: dict[str, str] = {
    "overheating": "temperature",
    "motor_fault": "current",
    "pressure_leak": "pressure",
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetSpec(_Spec):
    """One asset: its ID (unique at its site), kind and publish rate in readings per second."""

    id: str = Field(pattern=_ID)
    kind: Kind
    # 1000/s at most: the payload's timestamps have millisecond resolution.
    rate: float = Field(1.0, gt=0, le=1000)


class SiteSpec(_Spec):
    """One site and its assets."""

    name: str = Field(pattern=_ID)
    assets: list[AssetSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> SiteSpec:
        seen: set[str] = set()
        for i, asset in enumerate(self.assets):
            if asset.id in seen:
                raise ValueError(f"assets[{i}].id: asset {asset.id!r} is listed twice: rename one")
            seen.add(asset.id)
        return self


class FaultSpec(_Spec):
    """A fault scheduled on one asset: when it starts, how long it develops, how bad it gets."""

    site: str
    asset: str
    type: FaultType
    onset: float = Field(ge=0)
    develop: float = Field(0.0, ge=0)
    severity: float = Field(1.0, gt=0, le=1)
    metric: str | None = None
    duration: float | None = Field(None, gt=0)

    @field_validator("onset", "develop", "duration", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)


class FleetSpec(_Spec):
    """A whole fleet: a seed (same seed, same stream), sites and scheduled faults."""

    seed: int = 7
    sites: list[SiteSpec] = Field(min_length=1)
    faults: list[FaultSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> FleetSpec:
        names: set[str] = set()
        for i, site in enumerate(self.sites):
            if site.name in names:
                raise ValueError(f"sites[{i}].name: site {site.name!r} is listed twice")
            names.add(site.name)
        for i, fault in enumerate(self.faults):
            problem = fault_problem(self, fault)
            if problem:
                key, text = problem
                raise ValueError(f"faults[{i}].{key}: {text}")
        return self

    def kind_of(self, site: str, asset: str) -> str | None:
        """The kind of an asset, or None when the fleet has no such asset."""
        for s in self.sites:
            if s.name == site:
                for a in s.assets:
                    if a.id == asset:
                        return a.kind
        return None


def fault_problem(fleet: FleetSpec, fault: FaultSpec) -> tuple[str, str] | None:
    """Why a fault cannot apply to this fleet, as (key, problem), or None when it can."""
    if not any(s.name == fault.site for s in fleet.sites):
        return "site", f"no site {fault.site!r} in the fleet"
    kind = fleet.kind_of(fault.site, fault.asset)
    if kind is None:
        return "asset", f"no asset {fault.asset!r} at site {fault.site!r}"
    role = _NEEDS_ROLE.get(fault.type)
    if role and getattr(ROLES[kind], role) is None:
        return "type", f"{fault.type} needs a {role} sensor, which a {kind} does not have"
    if fault.metric is not None and fault.metric not in RANGES[kind]:
        known = ", ".join(RANGES[kind])
        return "metric", f"a {kind} has no metric {fault.metric!r} (it has {known})"
    return None


def with_faults(fleet: FleetSpec, extra: list[FaultSpec] | tuple[FaultSpec, ...]) -> FleetSpec:
    """The fleet with ``extra`` faults scheduled too; `FleetError` when one does not apply.

    Examples
    --------
    >>> fleet = FleetSpec(sites=[SiteSpec(name="a", assets=[AssetSpec(id="c", kind="conveyor")])])
    >>> with_faults(fleet, [FaultSpec(site="a", asset="c", type="overheating", onset=5)])
    Traceback (most recent call last):
    ...
    simulators.errors.FleetError: fault a/c:overheating: overheating needs a temperature sensor, \
which a conveyor does not have
    """
    for fault in extra:
        problem = fault_problem(fleet, fault)
        if problem:
            where = f"{fault.site}/{fault.asset}:{fault.type}"
            raise FleetError(f"fault {where}: {problem[1]}", key=problem[0])
    if not extra:
        return fleet
    return fleet.model_copy(update={"faults": [*fleet.faults, *extra]})


def shipped(name: str) -> Path:
    """The path of a fleet file shipped with meshwatch: ``"small"`` or ``"large"``.

    Examples
    --------
    >>> shipped("small").name
    'small.yaml'
    """
    if name not in ("small", "large"):
        raise FleetError(f"no shipped fleet {name!r}: use small or large, or a path")
    # Next to this module (package data, see pyproject): plain files in a wheel or a checkout.
    return Path(__file__).with_name("fleets") / f"{name}.yaml"


def fleet_path(name: str) -> Path:
    """A fleet named on the command line: ``small`` or ``large`` (shipped), else a file path.

    A file of that name in the current directory wins over the shipped fleet.
    """
    if name in ("small", "large") and not Path(name).exists():
        return shipped(name)
    return Path(name)


def load_fleet(path: Path) -> FleetSpec:
    """Read and validate a fleet file; `FleetError` names the file, line and key of a problem.

    Examples
    --------
    >>> load_fleet(shipped("small")).seed
    7
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetError(f"{path}: no such fleet file", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(f"{path}: cannot read the fleet file: {exc}", path=str(path)) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = exc.problem or str(exc)
        raise FleetError(
            f"{path}: line {line}: not valid YAML: {problem}", path=str(path), line=line
        ) from None
    if not isinstance(data, dict):
        raise FleetError(
            f"{path}: line 1: a fleet file is a mapping with seed, sites and faults",
            path=str(path),
            line=1,
        )
    try:
        return FleetSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: list[str | int] = list(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        nested = re.match(r"^([A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+(?:\[\d+\])?)*): (.*)$", message)
        if nested and first["type"] == "value_error":
            loc += _parse_key(nested.group(1))
            message = nested.group(2)
        key = key_path(loc)
        line = line_of(root, loc) or 1
        raise FleetError(
            f"{path}: line {line} ({key or 'top level'}): {message}",
            path=str(path),
            line=line,
            key=key,
        ) from None


def _parse_key(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]+)(?:\[(\d+)\])?", key):
        parts.append(name)
        if index:
            parts.append(int(index))
    return parts
