"""Fleet files: the shipped fleets load, and every problem names the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.errors import FleetError
from simulators.fleet import load_fleet, shipped

GOOD = """\
seed: 3
sites:
  - name: berlin
    assets:
      - {id: cnc-1, kind: cnc-mill}
      - {id: conveyor-1, kind: conveyor, rate: 2}
faults:
  - {site: berlin, asset: cnc-1, type: bearing_wear, onset: 20m, develop: 1h}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_fleet_file_loads_with_times_as_text(tmp_path: Path) -> None:
    """Assets, rates, the seed and faults with ``20m``-style times are read."""
    fleet = load_fleet(_write(tmp_path, GOOD))
    assert fleet.seed == 3
    assert [(a.id, a.kind, a.rate) for a in fleet.sites[0].assets] == [
        ("cnc-1", "cnc-mill", 1.0),
        ("conveyor-1", "conveyor", 2.0),
    ]
    assert (fleet.faults[0].onset, fleet.faults[0].develop) == (1200.0, 3600.0)


def test_the_small_fleet_has_3_sites_12_assets_and_every_kind() -> None:
    """The shipped small fleet: 3 sites, 12 assets over the 5 kinds, each kind at 2+ sites."""
    fleet = load_fleet(shipped("small"))
    assets = [(s.name, a.kind) for s in fleet.sites for a in s.assets]
    assert len(fleet.sites) == 3
    assert len(assets) == 12
    kinds = {kind for _, kind in assets}
    assert len(kinds) == 5
    for kind in kinds:
        assert len({site for site, k in assets if k == kind}) >= 2, kind
    assert all(a.rate == 1 for s in fleet.sites for a in s.assets)
    assert fleet.faults and all(f.onset >= 600 for f in fleet.faults)  # after the warm-up


def test_the_large_fleet_has_50_sites_and_2000_assets() -> None:
    """The shipped large fleet: 50 sites, 2,000 assets."""
    fleet = load_fleet(shipped("large"))
    assert len(fleet.sites) == 50
    assert sum(len(s.assets) for s in fleet.sites) == 2000


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "says"),
    [
        ("onset: 20m", "onset: soon", 8, "faults[0].onset", "invalid duration"),
        ("kind: conveyor", "kind: toaster", 6, "sites[0].assets[1].kind", "Input should be"),
        ("asset: cnc-1, type", "asset: cnc-9, type", 8, "faults[0].asset", "no asset 'cnc-9'"),
        ("bearing_wear", "pressure_leak", 8, "faults[0].type", "needs a pressure sensor"),
        ("id: conveyor-1", "id: cnc-1", 6, "sites[0].assets[1].id", "listed twice"),
        ("rate: 2", "rate: 0", 6, "sites[0].assets[1].rate", "greater than 0"),
        ("seed: 3", "seed: 3\ncolour: red", 2, "colour", "Extra inputs"),
    ],
    ids=[
        "bad-time",
        "unknown-kind",
        "unknown-asset",
        "fault-needs-sensor",
        "dup-id",
        "rate",
        "extra",
    ],
)
def test_a_bad_fleet_file_names_file_line_and_key(
    tmp_path: Path, old: str, new: str, line: int, key: str, says: str
) -> None:
    """The error is one line: ``<file>: line N (<key>): <problem>``."""
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line {line} ({key}): ")
    assert says in message
    assert "\n" not in message
    assert (caught.value.line, caught.value.key) == (line, key)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error names the file and the line where it is."""
    path = _write(tmp_path, GOOD.replace("  - name: berlin", "  - name: [berlin"))
    with pytest.raises(FleetError, match=rf"^{path}: line \d+: not valid YAML"):
        load_fleet(path)


def test_a_missing_fleet_file_says_so(tmp_path: Path) -> None:
    """A path that does not exist is a one-line FleetError."""
    with pytest.raises(FleetError, match="no such fleet file"):
        load_fleet(tmp_path / "nope.yaml")


def test_an_unknown_shipped_fleet_lists_the_choices() -> None:
    """Only ``small`` and ``large`` are shipped."""
    with pytest.raises(FleetError, match="use small or large"):
        shipped("medium")
