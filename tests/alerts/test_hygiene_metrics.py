"""The alarm-hygiene metrics (`alerts.metrics`): chattering, stale, flapping and shelved alerts.

Read from the engine's registry as Prometheus would scrape them, after the plant
(`plantkit.Plant`) ran its readings through the engine.
"""

from __future__ import annotations

from collections.abc import Callable

from plantkit import CNC_A, Plant, quick_rules

# A limit with nothing to calm it: fires on one hot reading, resolves on one cool one.
BARE_LIMIT = """
rules:
  - {name: hot, type: limit, condition: spindle_temp_c > 90, flapping: false}
"""
HOT = {CNC_A: {"spindle_temp_c": 95.0}}


def _sample(p: Plant, name: str, labels: dict[str, str] | None = None) -> float:
    value = p.engine.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def _blink(p: Plant, hot_s: int, cool_s: int, cycles: int) -> None:
    """The spindle hot for `hot_s` seconds, then cool for `cool_s`, `cycles` times."""
    for _ in range(cycles):
        p.run(hot_s, metrics=HOT, wall_every=0.01)
        p.run(cool_s, wall_every=0.01)


def test_an_alert_firing_three_times_in_a_minute_is_counted_as_chattering(
    plant: Callable[..., Plant],
) -> None:
    """Hot and cool every 5 s for two minutes: one chattering alert (ISA-18.2), not twelve."""
    p = plant(rules=BARE_LIMIT, assets=(CNC_A,))
    _blink(p, 5, 5, 12)
    assert _sample(p, "meshwatch_alerts_chattering_total", {"rule": "hot"}) == 1.0


def test_firings_under_three_a_minute_are_not_chattering(plant: Callable[..., Plant]) -> None:
    """Hot once every 30 s, for five minutes: it churns, but does not chatter."""
    p = plant(rules=BARE_LIMIT, assets=(CNC_A,))
    _blink(p, 1, 29, 10)
    assert _sample(p, "meshwatch_alerts_chattering_total", {"rule": "hot"}) == 0.0


def test_an_alert_firing_for_more_than_a_day_is_stale(plant: Callable[..., Plant]) -> None:
    """A warning that fired and stays firing counts as stale once it is 24 h old."""
    p = plant(rules=quick_rules(), assets=(CNC_A,))
    p.run(3, faulty=[CNC_A], every=600)  # a reading every 10 minutes: fires at 30 min
    p.run(144, faulty=[CNC_A], every=600)  # 24 h after firing, not more
    assert _sample(p, "meshwatch_alerts_stale") == 0.0
    p.run(1, faulty=[CNC_A], every=600)  # 24 h 10 min
    assert _sample(p, "meshwatch_alerts_stale") == 1.0


def test_a_flapping_alert_is_counted_while_held(plant: Callable[..., Plant]) -> None:
    """The flapping gauge is 1 while the flapping alert is held, 0 once it resolves."""
    rules = "rules:\n  - {name: hot, type: limit, condition: spindle_temp_c > 90}"
    p = plant(rules=rules, assets=(CNC_A,))
    _blink(p, 1, 29, 4)  # the fourth firing within 30 minutes is flapping
    assert _sample(p, "meshwatch_alerts_flapping") == 1.0
    p.run(900, wall_every=0.01)
    assert _sample(p, "meshwatch_alerts_flapping") == 0.0


def test_a_shelved_alert_is_counted_until_unshelved(plant: Callable[..., Plant]) -> None:
    """The shelved gauge counts shelves in force."""
    p = plant(rules=quick_rules(), assets=(CNC_A,))
    p.run(3, faulty=[CNC_A])
    alert = p.open_alert("anomaly", CNC_A)
    p.desk.shelve(alert.id, "ana", 3600.0)
    p.run(1, faulty=[CNC_A])
    assert _sample(p, "meshwatch_alerts_shelved") == 1.0
    p.desk.unshelve(alert.id, "ana")
    p.run(1, faulty=[CNC_A])
    assert _sample(p, "meshwatch_alerts_shelved") == 0.0


def test_a_shelved_alert_counts_as_muted_at_each_flush_of_its_group(
    plant: Callable[..., Plant],
) -> None:
    """Muted, cause shelved, once per flush it is held out of: 30 in 30 s of 1 s flushes."""
    p = plant(
        rules=quick_rules(), route="receivers: [mqtt]\ngroup_interval: 1s\nrepeat_interval: 10s"
    )
    p.run(3, faulty=[CNC_A])
    p.desk.shelve(p.open_alert("anomaly", CNC_A).id, "ana", 3600.0)
    p.run(30, faulty=[CNC_A])
    assert _sample(p, "meshwatch_notifications_muted_total", {"cause": "shelved"}) == 30.0
    assert p.told() == [("mqtt", "anomaly", "cnc-1", "firing")]  # its 3 repeats held back
