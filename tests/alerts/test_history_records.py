"""People's actions and the queued notifications reach the store with the pipeline's batches.

A real engine on a real alerts.db, its processor and the command handler: what each batch
or tick returns is what the store commits (docs/design.md §7).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from alerts.commands import handler
from alerts.commands.desk import AlertDesk
from alerts.commands.feedback import FeedbackDesk
from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.route import Route, RouteSpec
from alerts.rules import LimitRule
from alerts.state import AlertState
from ingest.base import Point, Reading

T0 = 1_767_225_600_000_000_000
WALL0 = 1_767_225_600.0
S = 1_000_000_000


class Pipeline:
    """The processor and the desks of one engine, as `meshwatch.alerting` wires them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wall = [WALL0]
        rules = [LimitRule(name="hot", condition="temp > 90", severity="critical")]
        route = Route.build(RouteSpec(receivers=["log", "mqtt"], group_wait=0))
        self.engine = AlertEngine(
            rules,
            route,
            AlertState(path),
            metrics=AlertMetrics(),
            wall=lambda: self.wall[0],
        )
        self.processor = AlertProcessor(self.engine)
        self.desk = AlertDesk(self.engine, self.processor.ledger)
        self.feedback = FeedbackDesk(self.engine, None, self.processor.ledger)

    def batch(self, start: int, stop: int, temp: float) -> list[Point]:
        readings = [
            Reading("lyon", "oven-1", "oven", T0 + n * S, {"temp": temp})
            for n in range(start, stop)
        ]
        self.wall[0] = WALL0 + stop
        return self.processor.process(readings)

    def send(self, command: str, body: dict[str, object]) -> dict[str, object]:
        reply = handler.handle(self.desk, command, orjson.dumps(body), self.feedback)
        assert reply["ok"], reply
        return reply

    def firing_id(self) -> str:
        [alert] = self.engine.open_alerts()
        return alert.id

    def close(self) -> None:
        self.processor.close()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(tmp_path / "alerts.db")
    yield running
    running.close()


def _of(points: list[Point], measurement: str) -> list[Point]:
    return [p for p in points if p.measurement == measurement]


def test_notifications_are_stored_with_the_batch_that_queued_them(pipeline: Pipeline) -> None:
    """The firing record and one notification point per receiver, in the same batch."""
    points = pipeline.batch(0, 3, 95.0)
    [firing] = _of(points, "alert")
    told = _of(points, "notification")
    assert sorted(p.tags["receiver"] for p in told) == ["log", "mqtt"]
    assert {(p.tags["state"], p.fields["id"], p.tags["asset"]) for p in told} == {
        ("firing", firing.fields["id"], "oven-1")
    }


def test_an_ack_is_stored_with_the_next_tick_then_forgotten_once_committed(
    pipeline: Pipeline,
) -> None:
    """The ack's point comes with the next tick, by, comment, alert id; not again after."""
    pipeline.batch(0, 3, 95.0)
    pipeline.processor.committed()
    alert_id = pipeline.firing_id()
    pipeline.send("ack", {"id": alert_id, "by": "ana", "comment": "on it"})
    [ack] = _of(pipeline.processor.tick(), "alert_action")
    assert (ack.tags["action"], ack.tags["rule"], ack.fields["by"], ack.fields["comment"]) == (
        "ack",
        "hot",
        "ana",
        "on it",
    )
    assert ack.fields["id"] == alert_id
    assert ack.ts >= T0 + 2 * S  # the fleet clock's event time, not the wall clock's
    pipeline.processor.committed()
    assert _of(pipeline.processor.tick(), "alert_action") == []


def test_an_action_not_yet_stored_at_a_crash_is_stored_after_the_restart(
    pipeline: Pipeline,
) -> None:
    """Handed to a batch that never committed: the restarted pipeline hands it again."""
    pipeline.batch(0, 3, 95.0)
    pipeline.processor.committed()
    pipeline.send("ack", {"id": pipeline.firing_id(), "by": "ana"})
    [handed] = _of(pipeline.processor.tick(), "alert_action")
    pipeline.engine.saver.state.close()  # the crash: no commit, nothing more saved
    restarted = Pipeline(pipeline.path)
    try:
        assert _of(restarted.processor.tick(), "alert_action") == [handed]
    finally:
        restarted.close()


def test_shelve_unshelve_and_a_verdict_are_stored_with_who_and_why(pipeline: Pipeline) -> None:
    """Each action one point: the shelf's end, the verdict."""
    pipeline.batch(0, 3, 95.0)
    alert_id = pipeline.firing_id()
    pipeline.send("shelve", {"action": "shelve", "id": alert_id, "duration": "2h", "by": "ana"})
    pipeline.send("shelve", {"action": "unshelve", "id": alert_id, "by": "ana"})
    pipeline.send("feedback", {"id": alert_id, "verdict": "fault", "by": "bob", "comment": "worn"})
    actions = _of(pipeline.processor.tick(), "alert_action")
    assert [(p.tags["action"], p.fields["by"]) for p in actions] == [
        ("shelve", "ana"),
        ("unshelve", "ana"),
        ("feedback", "bob"),
    ]
    assert actions[0].fields["until"] == int((WALL0 + 3 + 7200) * S)
    assert (actions[2].fields["verdict"], actions[2].fields["comment"]) == ("fault", "worn")
    assert len({p.ts for p in actions}) == 3  # applied between batches, still three points


def test_a_silence_added_and_expired_is_stored_with_its_matchers_and_window(
    pipeline: Pipeline,
) -> None:
    """``silence`` with matchers, window and author; ``expire`` with the same id."""
    pipeline.batch(0, 3, 60.0)
    body = {
        "action": "add",
        "matchers": ["site=lyon"],
        "duration": "1h",
        "created_by": "carl",
        "comment": "bearing swap",
    }
    silence = pipeline.send("silence", body)["silence"]
    assert isinstance(silence, dict)
    pipeline.send("silence", {"action": "expire", "id": silence["id"]})
    added, expired = _of(pipeline.processor.tick(), "alert_action")
    assert (added.tags["action"], added.tags["site"], expired.tags["action"]) == (
        "silence",
        "",
        "expire",
    )
    assert orjson.loads(str(added.fields["matchers"])) == ['site="lyon"']
    assert (added.fields["by"], added.fields["comment"]) == ("carl", "bearing swap")
    assert added.fields["ends_at"] - added.fields["starts_at"] == 3600 * S  # type: ignore[operator]
    assert expired.fields["id"] == silence["id"]
