"""The fleet seen whole (`alerts.health.peers`) across instances that each own a part of it.

Reroute advice and site-wide offline. The plant is one instance (``meshwatch``); another
instance's health reaches it as the retained messages it publishes (`AlertEngine.hear`), as
on the alerts connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from plantkit import CNC_A, FAST_ROUTE, HOT, Plant, hot_and_offline

from alerts.base import SITE_WIDE
from alerts.health.peers import Peers

OTHER = "meshwatch-2"
LIMITS = hot_and_offline("30s")


def _health(site: str, asset: str, status: str = "ok", **extra: Any) -> bytes:
    body = {
        "site": site,
        "asset": asset,
        "kind": "cnc-mill",
        "status": status,
        "score": 0.1,
        "since": "2026-01-01T00:00:00.000Z",
        "reason": "",
        "alerts": [],
        "instance": OTHER,
        **extra,
    }
    return orjson.dumps(body)


def _tell(p: Plant, site: str, asset: str, status: str = "ok", **extra: Any) -> None:
    p.engine.hear(f"meshwatch/health/{site}/{asset}", _health(site, asset, status, **extra))


def _candidates(p: Plant, key: tuple[str, str] = CNC_A) -> list[tuple[str, str]]:
    advice = p.advice(key)
    assert advice and advice[-1].payload, "no advice"
    return [(c["site"], c["asset"]) for c in advice[-1].json()["candidates"]]


# --- reroute advice ---------------------------------------------------------------------------


def test_advice_names_a_healthy_asset_another_instance_holds(plant: Callable[..., Plant]) -> None:
    """A same-kind machine at a site only the other instance watches is a candidate."""
    p = plant(rules=LIMITS, route=FAST_ROUTE, assets=(CNC_A,))
    _tell(p, "plant-z", "cnc-9")
    p.run(5, metrics={CNC_A: HOT})
    assert _candidates(p) == [("plant-z", "cnc-9")]


def test_a_peer_asset_that_fails_leaves_the_candidates(plant: Callable[..., Plant]) -> None:
    """When the other instance reports it critical, the advice is ranked again without it."""
    p = plant(rules=LIMITS, route=FAST_ROUTE, assets=(CNC_A,))
    _tell(p, "plant-z", "cnc-9")
    _tell(p, "plant-y", "cnc-8")
    p.run(5, metrics={CNC_A: HOT})
    assert sorted(_candidates(p)) == [("plant-y", "cnc-8"), ("plant-z", "cnc-9")]
    _tell(p, "plant-z", "cnc-9", "critical")
    p.run(2, metrics={CNC_A: HOT})
    assert _candidates(p) == [("plant-y", "cnc-8")]


def test_the_assets_of_an_instance_that_went_away_are_no_candidates(
    plant: Callable[..., Plant],
) -> None:
    """Its alerts connection's retained status says offline: its last word is not trusted."""
    p = plant(rules=LIMITS, route=FAST_ROUTE, assets=(CNC_A,))
    _tell(p, "plant-z", "cnc-9")
    p.engine.hear(f"meshwatch/status/{OTHER}-alerts", b'{"status": "offline"}')
    p.run(5, metrics={CNC_A: HOT})
    assert _candidates(p) == []


def test_an_instance_ignores_its_own_health_messages(plant: Callable[..., Plant]) -> None:
    """Its own retained messages come back on its subscription: they are not a peer's."""
    p = plant(rules=LIMITS, route=FAST_ROUTE, assets=(CNC_A,))
    p.engine.hear(
        "meshwatch/health/plant-z/cnc-9", _health("plant-z", "cnc-9", instance="meshwatch")
    )
    assert p.engine.peers.live() == {}


def test_a_malformed_health_message_is_ignored() -> None:
    """Not JSON, a missing field, a topic that disagrees with the body: nothing is taken."""
    peers = Peers("meshwatch", "meshwatch")
    assert not peers.hear("meshwatch/health/a/x", b"{not json")
    assert not peers.hear("meshwatch/health/a/x", b'{"site": "a", "asset": "x"}')
    assert not peers.hear("meshwatch/health/a/x", _health("b", "y"))
    assert peers.live() == {}


def test_a_cleared_health_message_removes_the_peer_asset() -> None:
    """An empty retained message (the asset left the map) takes it out of the fleet."""
    peers = Peers("meshwatch", "meshwatch")
    peers.hear("meshwatch/health/a/x", _health("a", "x"))
    assert peers.hear("meshwatch/health/a/x", b"")
    assert peers.live() == {}


# --- a site spread over instances --------------------------------------------------------------

SPREAD = (("plant-a", "cnc-3"), ("plant-a", "cnc-5"))
# plant-b keeps reporting, so the fleet's clock goes on while plant-a is quiet.
WITH_B = (*SPREAD, ("plant-b", "cnc-2"))


def _spread(plant: Callable[..., Plant]) -> Plant:
    p = plant(rules=LIMITS, route=FAST_ROUTE, assets=WITH_B)
    p.run(5)
    return p


def _site_alerts(p: Plant) -> list[str]:
    return [x.fields["state"] for x in p.points if x.tags["asset"] == SITE_WIDE]


def test_a_site_whose_assets_elsewhere_still_report_is_not_offline(
    plant: Callable[..., Plant],
) -> None:
    """Our two machines at plant-a go quiet, the other instance's reports ok: no site alert."""
    p = _spread(plant)
    _tell(p, "plant-a", "cnc-9")
    p.run(40, silent=SPREAD)
    assert _site_alerts(p) == []
    assert sorted(a for _, _, a, s in p.told() if s == "firing") == [
        "cnc-3",
        "cnc-3",
        "cnc-5",
        "cnc-5",
    ]


def test_the_holder_of_the_sites_first_asset_raises_the_site_alert(
    plant: Callable[..., Plant],
) -> None:
    """All of plant-a is offline; our cnc-3 comes before their cnc-9: we raise the site alert."""
    p = _spread(plant)
    _tell(p, "plant-a", "cnc-9", "offline")
    p.run(40, silent=SPREAD)
    assert _site_alerts(p) == ["firing"]
    assert p.told() == [
        ("mqtt", "offline", SITE_WIDE, "firing"),
        ("log", "offline", SITE_WIDE, "firing"),
    ]


def test_another_instance_raises_it_and_ours_stay_quiet(plant: Callable[..., Plant]) -> None:
    """Their cnc-1 comes first: they raise the site alert; ours are inhibited, not told."""
    p = _spread(plant)
    _tell(p, "plant-a", "cnc-1", "offline")
    p.run(40, silent=SPREAD)
    assert _site_alerts(p) == []
    assert p.told() == []
    assert p.engine.deadman.down_elsewhere == frozenset({"plant-a"})


def test_the_site_alert_resolves_when_an_asset_elsewhere_reports_again(
    plant: Callable[..., Plant],
) -> None:
    """Ours stay quiet; theirs comes back: the site is no longer down as a whole."""
    p = _spread(plant)
    _tell(p, "plant-a", "cnc-9", "offline")
    p.run(40, silent=SPREAD)
    _tell(p, "plant-a", "cnc-9", "ok")
    p.run(3, silent=SPREAD)
    assert _site_alerts(p) == ["firing", "resolved"]


# --- a newcomer -------------------------------------------------------------------------------


def test_an_instance_that_comes_online_hears_the_whole_map_again(
    plant: Callable[..., Plant],
) -> None:
    """Each asset's health is published anew when another instance's status says online.

    RabbitMQ sends no retained message to a wildcard subscription: the newcomer would know
    only what changes after it subscribed.
    """
    p = plant(rules=LIMITS, route=FAST_ROUTE)
    p.run(3)
    before = len(p.health(CNC_A))
    status = orjson.dumps({"client_id": f"{OTHER}-alerts", "status": "online"})
    p.engine.hear(f"meshwatch/status/{OTHER}-alerts", status)
    assert len(p.health(CNC_A)) == before + 1
    p.engine.hear(f"meshwatch/status/{OTHER}-alerts", status)  # the same instance, still up
    assert len(p.health(CNC_A)) == before + 1
