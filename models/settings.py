"""Settings of the models: detector profiles, memory bound and checkpoints (``models:``).

A profile says which detector an asset gets and how its verdicts are made. Profiles are
chosen per reading: the first whose ``kinds`` contains the payload's ``kind``, else the first
whose ``assets`` pattern matches ``site/asset``, else the profile named ``default``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DetectorType = Literal[
    "operating_states",
    "control_chart",
    "mahalanobis",
    "half_space_trees",
    "one_class_svm",
    "zscore",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSpec(_Section):
    """A detector and its parameters (passed to its constructor)."""

    type: DetectorType = "operating_states"
    params: dict[str, Any] = Field(default_factory=dict)


class ProfileSettings(_Section):
    """How the assets of one kind are modelled.

    Parameters
    ----------
    name
        Unique name, shown in the ``anomaly`` records' ``detector`` tag.
    kinds, assets
        Which assets use it: payload kinds, or regular expressions on ``site/asset``.
    detectors
        One or more detectors; with several, the verdict uses the highest calibrated score.
    metrics
        The metrics the detectors see; empty means every metric the asset reports.
    warmup
        Readings learned before any verdict; the threshold is calibrated on them.
    quantile, margin
        For river detectors without a threshold of their own (all but ``control_chart``):
        the threshold is the ``quantile`` of their warm-up scores, times ``margin``.
    window, min_hits
        Persistence: a reading is anomalous when at least ``min_hits`` of the last ``window``
        readings scored over the threshold (one spike is not a failing machine).
    learn_anomalous
        Whether readings flagged anomalous still teach the model (off: a slow fault is not
        learned as the new normal).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kinds: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    detectors: tuple[DetectorSpec, ...] = (DetectorSpec(),)
    metrics: tuple[str, ...] = ()
    warmup: int = Field(400, ge=10, le=1_000_000)
    quantile: float = Field(0.99, gt=0.5, lt=1.0)
    margin: float = Field(1.0, gt=0)
    # The control chart smooths its evidence itself: one reading over threshold is enough.
    window: int = Field(1, ge=1, le=1000)
    min_hits: int = Field(1, ge=1)
    learn_anomalous: bool = False

    @field_validator("assets")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"asset pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
        return patterns

    @model_validator(mode="after")
    def _consistent(self) -> ProfileSettings:
        if self.min_hits > self.window:
            raise ValueError(f"min_hits {self.min_hits} cannot exceed window {self.window}")
        if not self.detectors:
            raise ValueError("a profile needs at least one detector")
        return self


def default_profiles() -> tuple[ProfileSettings, ...]:
    """The shipped profiles: the default (a control chart with its own threshold)."""
    return (ProfileSettings(name="default"),)


class ModelsSettings(_Section):
    """The ``models:`` section."""

    enabled: bool = True
    profiles: tuple[ProfileSettings, ...] = Field(default_factory=default_profiles)
    # 10,000 models of ~32 KiB are ~320 MB: a large site on one machine.
    max_models: int = Field(10_000, ge=1)
    # Seconds between checkpoints of the models that learned since the last one.
    checkpoint_interval: float = Field(60.0, gt=0)
    #: PostgreSQL every instance of a cluster reaches (``postgresql://host/db``), so that a
    #: model moves with its asset's partition (`models.sharedcheckpoints`); None: models.db.
    checkpoints_url: str | None = Field(None, pattern=r"^postgres(ql)?://\S+$")

    @field_validator("profiles", mode="before")
    @classmethod
    def _name_the_bad_profile(cls, value: Any) -> Any:
        """Validate each profile alone, so that an error names the profile, not its index."""
        if not isinstance(value, list | tuple):
            return value
        profiles = []
        for i, item in enumerate(value):
            if isinstance(item, ProfileSettings):
                profiles.append(item)
                continue
            name = item.get("name", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
            try:
                profiles.append(ProfileSettings.model_validate(item))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"]) or "profile"
                message = error["msg"].removeprefix("Value error, ")
                raise ValueError(f"profile {name!r}: {where}: {message}") from None
        return tuple(profiles)

    @model_validator(mode="after")
    def _profiles_are_usable(self) -> ModelsSettings:
        names = [p.name for p in self.profiles]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"profile names must be unique: {sorted(duplicates)[0]!r} repeats")
        if "default" not in names:
            raise ValueError("one profile must be named 'default' (used when nothing matches)")
        return self
