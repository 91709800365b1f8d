"""Shelving (`alerts.shelves`): one firing alert set aside for a time, by someone, for a reason.

The shelf itself first, then the engine (`plantkit.Plant`): a fault on cnc-1 at plant-a fires
the ``anomaly`` warning of `plantkit.quick_rules` at 3 s of event time. The ``firing``
plant's route repeats a firing alert every 30 s, so a shelf's effect on the repeats shows
within a minute or two; the ``unrepeated`` plant's never repeats within a test, so an
announcement after a shelf is the shelf's doing, not a repeat's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing

import pytest
from plantkit import CNC_A, FAST_ROUTE, WALL0, Plant, prompt_rules, quick_rules

from alerts.errors import CommandError
from alerts.shelves import MAX_SHELF, Shelf, Shelves

FIRED = [("mqtt", "anomaly", "cnc-1", "firing"), ("log", "anomaly", "cnc-1", "firing")]
RESOLVED = [("mqtt", "anomaly", "cnc-1", "resolved"), ("log", "anomaly", "cnc-1", "resolved")]


def _shelve(p: Plant, seconds: float = 3600.0, by: str = "ana") -> Shelf:
    """Shelve the firing anomaly alert of cnc-1."""
    alert = p.open_alert("anomaly", CNC_A)
    return p.desk.shelve(alert.id, by, seconds, "known sensor fault")[1]


NO_REPEATS = "receivers: [mqtt, log]\ngroup_interval: 1s\nrepeat_interval: 24h"


def _firing(p: Plant) -> Plant:
    p.run(3, faulty=[CNC_A])
    assert p.told() == FIRED
    return p


@pytest.fixture
def firing(plant: Callable[..., Plant]) -> Plant:
    """A plant whose cnc-1 fires the anomaly warning (told once); repeats every 30 s."""
    return _firing(plant(rules=quick_rules(), route=FAST_ROUTE))


@pytest.fixture
def unrepeated(plant: Callable[..., Plant]) -> Plant:
    """A plant whose cnc-1 fires the anomaly warning (told once); no repeats."""
    return _firing(plant(rules=quick_rules(), route=NO_REPEATS))


# --- the shelf ------------------------------------------------------------------------------


def test_a_shelf_runs_from_now_for_its_duration() -> None:
    """Created at `now` for 2 h, it ends 2 h later and says who and why."""
    shelf = Shelf.create("a1", " ana ", "known sensor fault", WALL0, 7200.0)
    assert (shelf.by, shelf.starts_at, shelf.ends_at) == ("ana", WALL0, WALL0 + 7200.0)
    assert shelf.note() == "shelved by ana until 2026-01-01T02:00:00.000Z: known sensor fault"


@pytest.mark.parametrize(
    ("seconds", "by", "error"),
    [
        (MAX_SHELF + 1, "ana", "a shelf lasts at most 1d"),
        (0.0, "ana", "a shelf needs a duration above 0"),
        (3600.0, "  ", "a shelf needs by"),
    ],
    ids=["longer-than-a-day", "no-time", "nobody"],
)
def test_a_shelf_that_cannot_be_is_refused(seconds: float, by: str, error: str) -> None:
    """A shelf has a time limit (ISA-18.2), a duration and someone who set it."""
    with pytest.raises(CommandError, match=error):
        Shelf.create("a1", by, "", WALL0, seconds)


def test_shelves_due_are_those_whose_end_has_come() -> None:
    """`due` returns the shelves over by `now`, earliest first, and only those."""
    shelves = Shelves()
    for alert_id, seconds in (("late", 300.0), ("early", 60.0), ("later", 900.0)):
        shelves.put(alert_id, Shelf.create(alert_id, "ana", "", WALL0, seconds))
    assert [s.alert_id for s in shelves.due(WALL0 + 300)] == ["early", "late"]
    assert shelves.due(WALL0 + 59) == []


# --- in the engine --------------------------------------------------------------------------


def test_a_shelved_alert_is_not_repeated(firing: Plant) -> None:
    """Shelved for an hour: two minutes of the fault send nothing more."""
    _shelve(firing)
    firing.run(120, faulty=[CNC_A])
    assert firing.told() == FIRED


def test_a_shelved_alert_still_fires(firing: Plant) -> None:
    """Shelving holds notifications back; the alert stays open and firing."""
    _shelve(firing)
    firing.run(60, faulty=[CNC_A])
    assert firing.open_alert("anomaly", CNC_A).state == "firing"


def test_a_shelf_that_ends_announces_the_alert_still_firing(unrepeated: Plant) -> None:
    """At the shelf's end (wall clock) the alert, still firing, is announced again."""
    _shelve(unrepeated, seconds=60)
    unrepeated.run(50, faulty=[CNC_A])
    assert unrepeated.told() == FIRED
    unrepeated.run(15, faulty=[CNC_A])
    assert unrepeated.told() == FIRED * 2
    assert len(unrepeated.engine.shelves) == 0


def test_unshelving_announces_the_alert_again(unrepeated: Plant) -> None:
    """``unshelve`` ends the shelf now; the alert, still firing, is announced again."""
    shelf = _shelve(unrepeated)
    unrepeated.run(50, faulty=[CNC_A])
    unrepeated.desk.unshelve(shelf.alert_id, "ben")
    unrepeated.run(2, faulty=[CNC_A])
    assert unrepeated.told() == FIRED * 2


def test_resolution_ends_the_shelf_and_is_sent(plant: Callable[..., Plant]) -> None:
    """One-shot shelving: the alert resolves, its resolution goes out, the shelf is gone."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    _shelve(p)
    p.run(20)
    assert p.told() == FIRED + RESOLVED
    assert len(p.engine.shelves) == 0
    with closing(sqlite3.connect(p.path)) as conn:
        assert conn.execute("SELECT count(*) FROM shelves").fetchone() == (0,)


def test_the_next_episode_after_a_shelved_one_is_not_shelved(plant: Callable[..., Plant]) -> None:
    """A shelf holds one alert: the same fault coming back later is a new alert, told."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    _shelve(p)
    p.run(20)
    p.run(3, faulty=[CNC_A])
    assert p.told() == FIRED + RESOLVED + FIRED


def test_health_shows_a_shelved_alert_as_shelved(firing: Plant) -> None:
    """The health entry names the shelf's end and who set it; the reason says why."""
    _shelve(firing)
    health = firing.health(CNC_A)[-1]
    assert health["status"] == "warning"  # a shelf mutes; it does not heal the machine
    (entry,) = health["alerts"]
    assert (entry["shelved_until"], entry["shelved_by"]) == ("2026-01-01T01:00:03.000Z", "ana")
    assert health["reason"].endswith(
        "[shelved by ana until 2026-01-01T01:00:03.000Z: known sensor fault]"
    )


def test_unshelving_clears_the_mark_in_health(firing: Plant) -> None:
    """After ``unshelve`` the health entry is a plain firing alert again."""
    shelf = _shelve(firing)
    firing.desk.unshelve(shelf.alert_id, "ben")
    (entry,) = firing.health(CNC_A)[-1]["alerts"]
    assert "shelved_until" not in entry


def test_shelving_again_replaces_the_shelf(firing: Plant) -> None:
    """A second shelve of the same alert sets a new end and author."""
    _shelve(firing, seconds=60)
    again = _shelve(firing, seconds=7200, by="ben")
    assert firing.engine.shelves.get(again.alert_id) == again
    firing.run(70, faulty=[CNC_A])
    assert firing.told() == FIRED


@pytest.mark.parametrize("stop", ["restart", "crash"], ids=["restart", "sigkill"])
def test_a_shelf_survives_a_stop(firing: Plant, stop: str) -> None:
    """After a stop (clean or killed), the alert is still shelved: no repeats, still marked."""
    shelf = _shelve(firing)
    getattr(firing, stop)()
    firing.run(120, faulty=[CNC_A])
    assert firing.told() == FIRED
    assert firing.engine.shelves.get(shelf.alert_id) == shelf
    assert firing.engine.health.entries[CNC_A].alerts[0]["shelved_by"] == "ana"


def test_a_shelf_that_ended_while_stopped_ends_on_start(unrepeated: Plant) -> None:
    """A shelf whose end passed while the pipeline was down ends at once, and announces."""
    _shelve(unrepeated, seconds=60)
    unrepeated.restart()
    unrepeated.wall.now += 120
    unrepeated.run(2, faulty=[CNC_A])
    assert unrepeated.told() == FIRED * 2
