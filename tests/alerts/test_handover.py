"""An asset's alert state moves with it between instances (`alerts.handover`, issue 14).

Two alert engines, as two instances of a cluster, share the assets' alert state in a real
PostgreSQL (`alerts.sharedstate`): instance A holds the fleet, then gives plant-b's mill up
(`AlertEngine.release`, as the clustered source does when its partition moves) and instance
B reads it from then on. Notifications are read from each instance's outbox, health from
what each published. The last tests release without a shared store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from plantkit import CNC_A, CNC_B, CNC_C, FLEET, HOT, Plant, fast_route, hot_and_offline

from alerts.base import State
from alerts.sharedstate import PostgresAlertState

RULES = hot_and_offline(
    "5m", "{name: warm, type: limit, condition: bearing_temp_c > 80, severity: warning, for: 30s}"
)
# Told at once; no repeat within a test, so every notification is a new one.
ROUTE = fast_route("mqtt", repeat="4h")
NORMAL = {"spindle_temp_c": 60.0}

Cluster = Callable[..., tuple[Plant, Plant]]


@pytest.fixture
def cluster(plant: Callable[..., Plant], postgres_url: str) -> Cluster:
    """Two instances sharing the assets' alert state: A holds the fleet, B plant-b's mill."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def shared(instance: str) -> Callable[[], PostgresAlertState]:
        return lambda: PostgresAlertState(postgres_url, instance, table_prefix=prefix)

    def make(route: str = ROUTE) -> tuple[Plant, Plant]:
        a = plant(RULES, route, FLEET, "a.db", shared=shared("meshwatch-a"), instance="meshwatch-a")
        b = plant(
            RULES, route, (CNC_B,), "b.db", shared=shared("meshwatch-b"), instance="meshwatch-b"
        )
        return a, b

    return make


def _hand_over(a: Plant, b: Plant) -> None:
    """A gives plant-b's mill up after its last batch; B reads on from the same moment."""
    a.engine.release({CNC_B})
    b.t = a.t


pytestmark = pytest.mark.integration


def test_a_firing_alert_keeps_its_id_on_the_new_holder(cluster: Cluster) -> None:
    """The alert A raised is the one B holds: same id, still firing."""
    a, b = cluster()
    a.run(5, metrics={CNC_B: HOT})
    raised = a.open_alert("hot", CNC_B)
    _hand_over(a, b)
    b.run(5, metrics={CNC_B: HOT})
    held = b.open_alert("hot", CNC_B)
    assert (held.id, held.state, held.started_at) == (raised.id, State.FIRING, raised.started_at)


def test_the_new_holder_does_not_notify_a_firing_alert_again(cluster: Cluster) -> None:
    """A told the receiver once; B, reading on while it fires, tells nobody."""
    a, b = cluster()
    a.run(5, metrics={CNC_B: HOT})
    _hand_over(a, b)
    b.run(20, metrics={CNC_B: HOT})
    assert a.told() == [("mqtt", "hot", "cnc-2", "firing")]
    assert b.told() == []


def test_the_new_holder_tells_the_resolution_to_whoever_heard_it_fire(cluster: Cluster) -> None:
    """A told the receiver it fired; B, where it resolves, tells the receiver it is over."""
    a, b = cluster()
    a.run(5, metrics={CNC_B: HOT})
    _hand_over(a, b)
    b.run(3, metrics={CNC_B: NORMAL})
    assert b.told() == [("mqtt", "hot", "cnc-2", "resolved")]
    assert [n.alerts[0]["id"] for n in b.outbox()] == [a.outbox()[0].alerts[0]["id"]]


def test_an_alert_that_fired_unheard_is_told_once_by_the_new_holder(
    cluster: Cluster,
) -> None:
    """Fired at A just before the hand-over, before a flush told anyone: B tells it, once."""
    a, b = cluster(ROUTE.replace("group_wait: 0s", "group_wait: 30s"))
    a.run(5, metrics={CNC_B: HOT})
    _hand_over(a, b)
    b.run(40, metrics={CNC_B: HOT})
    assert a.told() == []
    assert b.told() == [("mqtt", "hot", "cnc-2", "firing")]


def test_a_pending_on_delay_goes_on_at_the_new_holder(
    cluster: Cluster, plant: Callable[..., Plant]
) -> None:
    """20 s of a 30 s on-delay at A, then B: the alert fires when one instance alone fires it."""
    a, b = cluster()
    alone = plant(RULES, ROUTE, (CNC_B,), "alone.db")
    warm = {CNC_B: {"spindle_temp_c": 60.0, "bearing_temp_c": 85.0}}
    a.run(20, metrics=warm)
    _hand_over(a, b)
    b.run(20, metrics=warm)
    alone.run(40, metrics=warm)
    fired = alone.open_alert("warm", CNC_B)
    assert fired.state is State.FIRING
    assert (b.open_alert("warm", CNC_B).id, b.open_alert("warm", CNC_B).started_at) == (
        fired.id,
        fired.started_at,
    )


def test_the_time_a_partition_waited_to_be_read_is_not_silence(cluster: Cluster) -> None:
    """B reads on 400 s ahead before A's dead partition reaches it: no offline for the mill.

    A dies holding the mill (no hand-over); B, whose clock ran ahead on its other assets
    meanwhile, gets the mill's unacked reading again, which it skips (A judged it).
    """
    a, b = cluster()
    a.run(5)
    b.assets = (("plant-d", "cnc-4"),)
    b.t = a.t
    b.run(400)
    ahead, b.t = b.t, a.t
    again = b.reading(CNC_B)  # a redelivery: A had judged it, and saved
    b.t = ahead
    b.engine.observe([again])
    b.engine.commit()
    b.run(1)  # the deadman looks again a second later
    assert CNC_B in b.engine.assets
    assert [x.asset for x in b.engine.open_alerts()] == []


def test_the_old_holder_forgets_what_it_gave_up(cluster: Cluster) -> None:
    """After the hand-over A has no entry for the mill: not in its map, not tracked."""
    a, b = cluster()
    a.run(5, metrics={CNC_B: HOT})
    _hand_over(a, b)
    assert CNC_B not in a.engine.assets
    assert CNC_B not in a.engine.health.entries
    assert [x.alert.asset for x in a.engine.episodes.open.values()] == []


def test_the_old_holder_clears_the_health_it_gave_up(cluster: Cluster) -> None:
    """A's last word on the mill's health is an empty retained message; B publishes its own."""
    a, b = cluster()
    a.run(5, metrics={CNC_B: HOT})
    _hand_over(a, b)
    b.run(1, metrics={CNC_B: HOT})
    assert a.publisher.on("meshwatch/health/plant-b/cnc-2")[-1].payload == b""
    (mine,) = b.health(CNC_B)
    assert (mine["status"], mine["instance"]) == ("critical", "meshwatch-b")


def test_the_old_holder_does_not_call_offline_what_it_gave_up(cluster: Cluster) -> None:
    """A reads on for 10 minutes of event time without the mill: no offline alert for it."""
    a, b = cluster()
    a.run(5)
    _hand_over(a, b)
    a.assets = (CNC_A, CNC_C)
    a.run(600)
    assert [p.tags["asset"] for p in a.points if p.tags["rule"] == "offline"] == []


def test_an_instance_takes_back_the_assets_it_held_after_a_crash(cluster: Cluster) -> None:
    """Restarted after a SIGKILL, A holds the mill again: silent, it is called offline."""
    a, _ = cluster()
    a.run(5, metrics={CNC_B: HOT})
    a.crash()
    a.assets = (CNC_A,)
    a.run(400)
    assert CNC_B in a.engine.assets
    assert ("cnc-2", "offline") in {(x.asset, x.rule) for x in a.engine.open_alerts()}


def test_an_instance_lets_go_an_asset_whose_health_another_publishes(cluster: Cluster) -> None:
    """B holds the mill now and says so: A, which still tracked it, lets it go."""
    a, b = cluster()
    a.run(5)
    b.t = a.t
    b.run(1)
    (message,) = b.publisher.on("meshwatch/health/plant-b/cnc-2")
    a.engine.hear(message.topic, message.payload)
    assert CNC_B not in a.engine.assets


def test_a_save_lets_go_an_asset_another_instance_claimed(cluster: Cluster) -> None:
    """B claimed the mill while A still tracked it: A's next save of it finds B, A lets go."""
    a, b = cluster()
    a.run(5)
    b.t = a.t
    b.run(1)
    a.run(1)  # a second later: the mill's last reading is saved, or would be
    assert CNC_B not in a.engine.assets
    assert a.engine.saver.shared is not None
    assert a.engine.saver.shared.holders()[CNC_B] == "meshwatch-b"  # type: ignore[attr-defined]
