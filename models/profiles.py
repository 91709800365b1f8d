"""Which profile an asset gets: by its kind, else by an asset pattern, else the default."""

from __future__ import annotations

import hashlib
import re

from models.settings import ProfileSettings


class ProfileSelector:
    """Chooses a profile for an asset on first sight.

    Examples
    --------
    >>> selector = ProfileSelector((
    ...     ProfileSettings(name="default"),
    ...     ProfileSettings(name="mills", kinds=("cnc-mill",)),
    ...     ProfileSettings(name="lyon", assets=(r"lyon/.*",)),
    ... ))
    >>> [selector.select(s, a, k).name for s, a, k in
    ...  [("berlin", "m1", "cnc-mill"), ("lyon", "p1", None), ("porto", "x", "pump")]]
    ['mills', 'lyon', 'default']
    """

    def __init__(self, profiles: tuple[ProfileSettings, ...]) -> None:
        self.by_name = {p.name: p for p in profiles}
        self._by_kind: dict[str, ProfileSettings] = {}
        for profile in profiles:  # the first profile naming a kind wins
            for kind in profile.kinds:
                self._by_kind.setdefault(kind, profile)
        self._patterns = [(re.compile(pattern), p) for p in profiles for pattern in p.assets]
        self.default = self.by_name["default"]

    def select(self, site: str, asset: str, kind: str | None) -> ProfileSettings:
        """The profile for this asset."""
        if kind is not None and kind in self._by_kind:
            return self._by_kind[kind]
        key = f"{site}/{asset}"
        for pattern, profile in self._patterns:
            if pattern.fullmatch(key):
                return profile
        return self.default


def fingerprint(profile: ProfileSettings) -> str:
    """A short hash of what shapes a model's learned state (its checkpoint tag).

    Detectors, metrics, warm-up and the calibration of river detectors; not the name, the
    matching rules or the verdict rules (window, min_hits, learn_anomalous), which can
    change without sending the fleet back into warm-up.

    Examples
    --------
    >>> fingerprint(ProfileSettings(name="a")) == fingerprint(ProfileSettings(name="a"))
    True
    >>> fingerprint(ProfileSettings(name="a")) == fingerprint(ProfileSettings(name="a", warmup=50))
    False
    """
    text = profile.model_dump_json(include={"detectors", "metrics", "warmup", "quantile", "margin"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]
