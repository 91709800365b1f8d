"""Unit tests of profile settings, selection (`ProfileSelector`) and `fingerprint`."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from models.asset import AssetModel
from models.errors import ProfileError
from models.profiles import ProfileSelector, fingerprint
from models.settings import DetectorSpec, ModelsSettings, ProfileSettings

PROFILES = """
profiles:
  - name: default
  - name: mills
    kinds: [cnc-mill, lathe]
  - name: lyon
    assets: ['lyon/.*']
  - name: pumps
    assets: ['.*/pump-[0-9]+', 'porto/p.*']
  - name: late-lyon
    assets: ['lyon/m1']
"""


def _settings(text: str) -> ModelsSettings:
    return ModelsSettings.model_validate(yaml.safe_load(text))


@pytest.fixture(scope="module")
def selector() -> ProfileSelector:
    """The selector of the `PROFILES` settings."""
    return ProfileSelector(_settings(PROFILES).profiles)


@pytest.mark.parametrize(
    ("site", "asset", "kind", "expected"),
    [
        ("berlin", "m1", "cnc-mill", "mills"),
        ("berlin", "m2", "lathe", "mills"),
        ("lyon", "m1", "cnc-mill", "mills"),
        ("lyon", "p1", None, "lyon"),
        ("lyon", "p1", "unknown-kind", "lyon"),
        ("lyon", "m1", None, "lyon"),
        ("berlin", "pump-12", None, "pumps"),
        ("porto", "p7", "fan", "pumps"),
        ("berlin", "pump-12b", None, "default"),
        ("xlyon", "p1", None, "default"),
        ("berlin", "m1", None, "default"),
    ],
    ids=[
        "kind",
        "second-kind-of-profile",
        "kind-beats-pattern",
        "pattern",
        "unknown-kind-falls-to-pattern",
        "first-matching-pattern-wins",
        "second-pattern-of-profile",
        "pattern-without-known-kind",
        "pattern-must-match-whole-id",
        "pattern-anchored-at-start",
        "default",
    ],
)
def test_profile_selection(
    selector: ProfileSelector, site: str, asset: str, kind: str | None, expected: str
) -> None:
    """A profile is chosen by kind, else by the first matching asset pattern, else default."""
    assert selector.select(site, asset, kind).name == expected


def test_first_profile_listing_a_kind_wins() -> None:
    """When two profiles list the same kind, the first one is chosen (as documented)."""
    settings = _settings(
        """
        profiles:
          - {name: default}
          - {name: first, kinds: [pump]}
          - {name: second, kinds: [pump]}
        """
    )
    assert ProfileSelector(settings.profiles).select("s", "a", "pump").name == "first"


@pytest.mark.parametrize(
    "change",
    [
        {"warmup": 500},
        {"quantile": 0.95},
        {"margin": 1.2},
        {"metrics": ("spindle_temp_c",)},
        {"detectors": (DetectorSpec(type="mahalanobis"),)},
        {"detectors": (DetectorSpec(type="control_chart", params={"lam": 0.2}),)},
    ],
    ids=["warmup", "quantile", "margin", "metrics", "type", "params"],
)
def test_fingerprint_changes_with_a_shaping_parameter(change: dict[str, Any]) -> None:
    """Changing anything that shapes a model changes the profile's fingerprint."""
    base = ProfileSettings(name="mills")
    assert fingerprint(base.model_copy(update=change)) != fingerprint(base)


@pytest.mark.parametrize(
    "change",
    [
        {"kinds": ("cnc-mill",)},
        {"assets": ("lyon/.*",)},
        {"name": "renamed"},
        {"window": 5, "min_hits": 3},
        {"learn_anomalous": True},
    ],
    ids=["kinds", "assets", "name", "persistence", "learning"],
)
def test_fingerprint_ignores_what_does_not_shape_learned_state(change: dict[str, Any]) -> None:
    """Who uses a profile and its verdict rules can change without a new warm-up."""
    base = ProfileSettings(name="mills")
    assert fingerprint(ProfileSettings(**{"name": "mills", **change})) == fingerprint(base)


def test_fingerprint_is_stable_across_equal_profiles() -> None:
    """Two equal profiles built separately have the same fingerprint."""
    a = _settings(PROFILES).profiles[1]
    b = _settings(PROFILES).profiles[1]
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{name: broken, detectors: [{type: isolation_forest}]}", "detectors"),
        ("{name: broken, window: 3, min_hits: 5}", "min_hits 5 cannot exceed window 3"),
        ("{name: broken, assets: ['lyon/(']}", "not a regular expression"),
        ("{name: broken, warmup: 5}", "warmup"),
        ("{name: broken, quantile: 1.5}", "quantile"),
        ("{name: broken, treshold: 0.9}", "treshold"),
        ("{name: broken, detectors: []}", "at least one detector"),
    ],
    ids=[
        "unknown-detector",
        "min-hits-over-window",
        "bad-regex",
        "warmup-too-short",
        "quantile-out-of-range",
        "unknown-key",
        "no-detector",
    ],
)
def test_bad_profile_error_names_the_profile(bad: str, needle: str) -> None:
    """A bad profile fails validation with one message naming the profile and the problem."""
    with pytest.raises(ValidationError) as caught:
        _settings(f"profiles: [{{name: default}}, {bad}]")
    message = str(caught.value)
    assert "profile 'broken'" in message
    assert needle in message


def test_profile_without_name_is_named_by_position() -> None:
    """A profile without a name is named by its position in the list."""
    with pytest.raises(ValidationError, match="profile '#2'"):
        _settings("profiles: [{name: default}, {kinds: [pump]}]")


def test_duplicate_profile_names_are_rejected() -> None:
    """Two profiles with one name fail validation, naming the name."""
    with pytest.raises(ValidationError, match="'mills' repeats"):
        _settings("profiles: [{name: default}, {name: mills}, {name: mills, warmup: 50}]")


def test_settings_without_default_profile_are_rejected() -> None:
    """The profiles must include one named 'default' (used when nothing matches)."""
    with pytest.raises(ValidationError, match="named 'default'"):
        _settings("profiles: [{name: mills, kinds: [cnc-mill]}]")


@pytest.mark.parametrize(
    "params",
    [{"no_such_param": 1}, {"shrinkage": 2.0}],
    ids=["unknown-param", "bad-value"],
)
def test_unbuildable_detector_names_the_profile(params: dict[str, Any]) -> None:
    """A detector the profile cannot build raises ProfileError naming profile and detector."""
    settings = _settings(
        f"profiles: [{{name: default}}, {{name: broken, detectors: "
        f"[{{type: mahalanobis, params: {params}}}]}}]"
    )
    with pytest.raises(ProfileError, match="profile 'broken': detector mahalanobis"):
        AssetModel(settings.profiles[1])


def test_shipped_default_profiles_are_valid() -> None:
    """The default settings hold a usable 'default' profile."""
    settings = ModelsSettings()
    assert ProfileSelector(settings.profiles).select("s", "a", None).name == "default"
    AssetModel(settings.profiles[0])
