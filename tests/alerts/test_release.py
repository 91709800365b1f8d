"""An instance gives assets up without a shared store (`AlertEngine.release`, issue 14).

The clustered source releases the assets of the partitions it gives up; without
``alerts.state_url`` nothing is handed over (the next holder decides afresh), but the old
holder must still let them go: it would otherwise call them offline once their readings go
elsewhere, and repeat their alerts forever.
"""

from __future__ import annotations

from collections.abc import Callable

from plantkit import CNC_A, CNC_B, CNC_C, FLEET, HOT, Plant, fast_route, hot_and_offline

RULES = hot_and_offline()
ROUTE = fast_route("mqtt")


def _released(plant: Callable[..., Plant]) -> Plant:
    """A plant whose mill at plant-b fired, then went to another instance."""
    p = plant(RULES, ROUTE, FLEET)
    p.run(5, metrics={CNC_B: HOT})
    p.engine.release({CNC_B})
    p.assets = (CNC_A, CNC_C)
    return p


def test_a_released_asset_leaves_the_health_map_and_its_retained_entry_is_cleared(
    plant: Callable[..., Plant],
) -> None:
    """No entry for the mill any more, and an empty retained message on its health topic."""
    p = _released(plant)
    assert CNC_B not in p.engine.health.entries
    assert p.publisher.on("meshwatch/health/plant-b/cnc-2")[-1].payload == b""


def test_a_released_asset_is_never_called_offline(plant: Callable[..., Plant]) -> None:
    """Ten minutes of event time without its readings raise nothing for it."""
    p = _released(plant)
    p.run(600)
    assert [x.tags["asset"] for x in p.points if x.tags["rule"] == "offline"] == []


def test_a_released_firing_alert_is_not_repeated(plant: Callable[..., Plant]) -> None:
    """The old holder tells its receivers nothing more of the mill's alert."""
    p = _released(plant)
    told = p.told()
    p.run(120)
    assert p.told() == told == [("mqtt", "hot", "cnc-2", "firing")]


def test_a_released_asset_does_not_come_back_with_a_restart(plant: Callable[..., Plant]) -> None:
    """Its rows left alerts.db: restarted, the instance neither tracks it nor holds its alert."""
    p = _released(plant)
    p.restart()
    assert CNC_B not in p.engine.assets
    assert [a.asset for a in p.engine.open_alerts()] == []
