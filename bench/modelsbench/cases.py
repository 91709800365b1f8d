"""The profiles measured: one one-detector profile per detector type, and the shipped default.

Each detector type gets a profile with that single detector and its default parameters
(river's defaults for HalfSpaceTrees and OneClassSVM), and otherwise the defaults of
`models.settings.ProfileSettings` (warm-up 400, quantile 0.99). The shipped ``default``
profile is the one the goals apply to; when it equals one of these (today: the operating-state
model alone) that case carries it, otherwise it is measured as a case of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from models.settings import DetectorSpec, DetectorType, ProfileSettings, default_profiles

#: Detector types in the order the table lists them (the default first).
DETECTOR_TYPES: tuple[DetectorType, ...] = (
    "operating_states",
    "control_chart",
    "mahalanobis",
    "zscore",
    "half_space_trees",
    "one_class_svm",
)


@dataclass(frozen=True)
class Case:
    """One profile to measure.

    Attributes
    ----------
    label : str
        How the tables name it.
    profile : ProfileSettings
        The profile every model of the case is built from.
    default : bool
        Whether this is the shipped default profile (the goals apply to it).
    """

    label: str
    profile: ProfileSettings
    default: bool


def _same(a: ProfileSettings, b: ProfileSettings) -> bool:
    """Whether two profiles build the same models (names aside)."""
    return a.model_dump(exclude={"name"}) == b.model_dump(exclude={"name"})


def make_cases() -> list[Case]:
    """Return the cases: the detector types, and the shipped default if it is none of them.

    Returns
    -------
    list of Case
        Exactly one of them has ``default`` set.
    """
    missing = set(get_args(DetectorType)) - set(DETECTOR_TYPES)
    if missing:  # a new detector type: measure it too
        raise SystemExit(f"modelsbench does not know detector type(s) {sorted(missing)}")
    shipped = next(p for p in default_profiles() if p.name == "default")
    cases: list[Case] = []
    for kind in DETECTOR_TYPES:
        profile = ProfileSettings(name=f"bench-{kind}", detectors=(DetectorSpec(type=kind),))
        if _same(profile, shipped):
            cases.append(Case(f"{kind} (default)", shipped, True))
        else:
            cases.append(Case(kind, profile, False))
    if not any(c.default for c in cases):
        cases.insert(0, Case("default (shipped)", shipped, True))
    return cases
