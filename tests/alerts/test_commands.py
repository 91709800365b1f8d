"""Tests of the silence, ack and shelve commands (`alerts.commands.handler`) on a real engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from plantkit import quick_rules

from alerts.base import Alert, Observation
from alerts.commands import handler
from alerts.commands.desk import AlertDesk
from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.settings import AlertsSettings, load
from alerts.state import AlertState

# 2026-01-01T00:00:00Z: event time starts here (ns), and so does the wall clock (s).
T0 = 1_767_225_600_000_000_000
WALL0 = 1_767_225_600.0
SECOND = 1_000_000_000
# The wall clock when commands arrive: 2026-01-01T01:00:00Z.
NOW = WALL0 + 3600
NOW_TEXT = "2026-01-01T01:00:00.000Z"


class RecordingPublisher:
    """A `Publisher` that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.messages.append((topic, payload, retain))

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        raise AssertionError("the engine publishes without waiting for a PUBACK")

    def health(self, site: str, asset: str) -> list[str]:
        topic = f"meshwatch/health/{site}/{asset}"
        return [orjson.loads(p)["status"] for t, p, _ in self.messages if t == topic]


@dataclass
class Pipeline:
    """An engine on a real alerts.db whose cnc-1 at plant-a has a firing anomaly alert."""

    engine: AlertEngine
    publisher: RecordingPublisher
    path: Path
    wall: list[float]

    def send(self, command: str, payload: dict[str, Any] | bytes) -> dict[str, Any]:
        raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return handler.handle(AlertDesk(self.engine), command, raw)

    @property
    def firing(self) -> Alert:
        (alert,) = self.engine.open_alerts()
        return alert

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a command could change: silences, alerts, shelves, the file, what went out."""
        with closing(sqlite3.connect(self.path)) as conn:
            stored = conn.execute(
                "SELECT (SELECT group_concat(data) FROM silences),"
                " (SELECT group_concat(data) FROM episodes),"
                " (SELECT group_concat(data) FROM shelves)"
            ).fetchone()
        return (
            [s.to_state() for s in self.engine.silences.all(include_expired=True)],
            [a.to_state() for a in self.engine.open_alerts()],
            [s.to_state() for s in self.engine.shelves],
            stored,
            list(self.publisher.messages),
        )


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """Yield an engine (quick rules, default route) with one firing alert and one healthy asset.

    `plantkit.quick_rules` fire the anomaly warning on the third flagged reading in a row.
    """
    wall = [WALL0]
    publisher = RecordingPublisher()
    alerting = load(AlertsSettings())
    path = tmp_path / "alerts.db"
    engine = AlertEngine(
        quick_rules(),
        alerting.route,
        AlertState(path),
        metrics=AlertMetrics(),
        publisher=publisher,
        wall=lambda: wall[0],
    )
    for n in range(1, 4):
        wall[0] += 1
        engine.observe(
            [
                Observation(
                    "plant-a",
                    "cnc-1",
                    "cnc-mill",
                    T0 + n * SECOND,
                    {"vibration_rms": 2.0},
                    0.6,
                    True,
                    "vibration_rms",
                ),
                Observation("plant-b", "cnc-2", "cnc-mill", T0 + n * SECOND, {"t": 1.0}, 0.1),
            ]
        )
        engine.commit()
    wall[0] = NOW
    yield Pipeline(engine, publisher, path, wall)
    engine.close()


def _add(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": "r1",
        "action": "add",
        "matchers": ["site=plant-a", "asset=cnc-1"],
        "created_by": "ana",
        "comment": "spindle bearing swap",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


# --- silence add ----------------------------------------------------------------------------


def test_silence_add_with_a_duration_runs_from_now(pipeline: Pipeline) -> None:
    """A silence with a duration starts now and ends that long after."""
    reply = pipeline.send("silence", _add(duration="2h"))
    assert reply["ok"] is True
    silence = reply["silence"]
    assert (silence["starts_at"], silence["ends_at"], silence["status"]) == (
        NOW_TEXT,
        "2026-01-01T03:00:00.000Z",
        "active",
    )
    assert silence["matchers"] == ['site="plant-a"', 'asset="cnc-1"']
    assert (silence["created_by"], silence["comment"]) == ("ana", "spindle bearing swap")


def test_silence_add_with_an_end_time_ends_then(pipeline: Pipeline) -> None:
    """A silence with ``ends_at`` ends at that time, whatever its zone was written in."""
    reply = pipeline.send("silence", _add(ends_at="2026-01-01T05:30:00+02:00"))
    assert (reply["ok"], reply["silence"]["ends_at"]) == (True, "2026-01-01T03:30:00.000Z")


def test_silence_add_with_a_later_start_is_pending(pipeline: Pipeline) -> None:
    """A silence that starts later waits, and does not yet mean maintenance."""
    reply = pipeline.send("silence", _add(starts_at="2026-01-01T02:00:00Z", duration="1h"))
    assert (reply["ok"], reply["silence"]["status"]) == (True, "pending")
    assert pipeline.publisher.health("plant-a", "cnc-1")[-1] == "warning"


def test_silence_add_is_kept_in_the_state_file(pipeline: Pipeline) -> None:
    """The new silence is saved to alerts.db, so it survives a restart."""
    reply = pipeline.send("silence", _add(duration="2h"))
    with closing(sqlite3.connect(pipeline.path)) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM silences")]
    assert ids == [reply["silence"]["id"]]


def test_silence_add_puts_the_asset_in_maintenance(pipeline: Pipeline) -> None:
    """Silencing an asset publishes its health as ``maintenance``; others are untouched."""
    pipeline.send("silence", _add(duration="2h"))
    assert pipeline.publisher.health("plant-a", "cnc-1")[-1] == "maintenance"
    assert pipeline.publisher.health("plant-b", "cnc-2") == ["ok"]


def test_reply_carries_the_request_id_and_command(pipeline: Pipeline) -> None:
    """Replies name the command and echo the request id, so a tool can match them."""
    reply = pipeline.send("silence", _add(request_id="abc-42", duration="1h"))
    assert (reply["request_id"], reply["command"]) == ("abc-42", "silence")


# --- silence list and expire ----------------------------------------------------------------


def test_silence_list_shows_the_silences_not_expired(pipeline: Pipeline) -> None:
    """``list`` returns pending and active silences, oldest start first."""
    later = pipeline.send(
        "silence", _add(starts_at="2026-01-01T02:00:00Z", duration="1h", request_id="r1")
    )
    now = pipeline.send("silence", _add(duration="1h", request_id="r2"))
    pipeline.send("silence", {"action": "expire", "id": now["silence"]["id"]})
    active = pipeline.send("silence", _add(duration="3h", request_id="r3"))
    reply = pipeline.send("silence", {"action": "list"})
    assert [s["id"] for s in reply["silences"]] == [
        active["silence"]["id"],
        later["silence"]["id"],
    ]


def test_the_same_silence_command_delivered_again_is_one_silence(pipeline: Pipeline) -> None:
    """A redelivery (same ``request_id``) makes the same silence, not a second one."""
    first = pipeline.send("silence", _add(duration="1h"))["silence"]
    again = pipeline.send("silence", _add(duration="1h"))["silence"]
    assert first["id"] == again["id"]
    assert len(pipeline.send("silence", {"action": "list"})["silences"]) == 1


def test_a_silence_command_without_a_request_id_is_named_by_its_payload(
    pipeline: Pipeline,
) -> None:
    """Every instance given the same payload names the silence alike (one expire ends all)."""
    first = pipeline.send("silence", _add(duration="1h", request_id=None))["silence"]
    other = pipeline.send("silence", _add(duration="2h", request_id=None))["silence"]
    assert first["id"] != other["id"]
    assert len(first["id"]) == 16


def test_silence_list_all_includes_expired_ones(pipeline: Pipeline) -> None:
    """``list`` with ``all`` includes expired silences, marked so."""
    added = pipeline.send("silence", _add(duration="1h"))["silence"]
    pipeline.send("silence", {"action": "expire", "id": added["id"]})
    reply = pipeline.send("silence", {"action": "list", "all": True})
    assert [(s["id"], s["status"]) for s in reply["silences"]] == [(added["id"], "expired")]


def test_silence_expire_ends_it_now(pipeline: Pipeline) -> None:
    """``expire`` ends the silence at once, and the asset leaves maintenance."""
    added = pipeline.send("silence", _add(duration="2h"))["silence"]
    reply = pipeline.send("silence", {"action": "expire", "id": added["id"]})
    assert (reply["ok"], reply["silence"]["ends_at"], reply["silence"]["status"]) == (
        True,
        NOW_TEXT,
        "expired",
    )
    assert pipeline.publisher.health("plant-a", "cnc-1")[-2:] == ["maintenance", "warning"]


def test_expiring_an_expired_silence_is_refused(pipeline: Pipeline) -> None:
    """A silence cannot end twice."""
    added = pipeline.send("silence", _add(duration="2h"))["silence"]
    pipeline.send("silence", {"action": "expire", "id": added["id"]})
    reply = pipeline.send("silence", {"action": "expire", "id": added["id"]})
    assert (reply["ok"], reply["error"]) == (False, f"silence {added['id']} has already expired")


# --- ack ------------------------------------------------------------------------------------


def test_ack_acknowledges_a_firing_alert(pipeline: Pipeline) -> None:
    """``ack`` marks the alert acknowledged by its sender and replies with the alert."""
    alert_id = pipeline.firing.id
    reply = pipeline.send("ack", {"request_id": "r4", "id": alert_id, "by": "ben"})
    assert (reply["ok"], reply["alert"]["id"], reply["alert"]["state"]) == (
        True,
        alert_id,
        "firing",
    )
    assert pipeline.firing.acked_by == "ben"


def test_ack_is_kept_in_the_state_file(pipeline: Pipeline) -> None:
    """The acknowledgement is saved with the alert's episode."""
    pipeline.send("ack", {"id": pipeline.firing.id, "by": "ben"})
    with closing(sqlite3.connect(pipeline.path)) as conn:
        (data,) = conn.execute("SELECT data FROM episodes WHERE asset='cnc-1'").fetchone()
    assert orjson.loads(data)["alert"]["acked_by"] == "ben"


# --- bad commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "payload", "error"),
    [
        ("silence", b"{not json", "not JSON: "),
        ("silence", b"[1, 2]", "a command is a JSON object"),
        ("silence", b'"add"', "a command is a JSON object"),
        (
            "reboot",
            {"action": "add"},
            "unknown command 'reboot' (commands are silence, ack, shelve, feedback, model, "
            "history)",
        ),
        ("silence", _add(action="mute", duration="1h"), "does not match any of the expected tags"),
        ("silence", _add(action=None, duration="1h"), "Unable to extract tag using discriminator"),
        ("silence", _add(comment=None, duration="1h"), "comment: Field required"),
        ("silence", _add(comment="   ", duration="1h"), "a silence needs a comment"),
        ("silence", _add(created_by=None, duration="1h"), "created_by: Field required"),
        ("silence", _add(matchers=[], duration="1h"), "matchers: List should have at least 1"),
        (
            "silence",
            _add(matchers=["colour=red"], duration="1h"),
            "matcher 'colour=red': unknown label 'colour'",
        ),
        ("silence", _add(matchers=["asset=~("], duration="1h"), "bad regular expression"),
        ("silence", _add(matchers=["site plant-a"], duration="1h"), "expected label=value"),
        ("silence", _add(ends_at="2026-01-01T03:00:00"), "times need a time zone"),
        (
            "silence",
            _add(starts_at="2026-01-01T02:00:00", duration="1h"),
            "times need a time zone",
        ),
        ("silence", _add(ends_at="2026-01-01T00:30:00Z"), "its end is in the past"),
        (
            "silence",
            _add(starts_at="2025-12-31T22:00:00Z", duration="1h"),
            "its end is in the past",
        ),
        (
            "silence",
            _add(starts_at="2026-01-01T04:00:00Z", ends_at="2026-01-01T03:00:00Z"),
            "a silence must end after it starts",
        ),
        ("silence", _add(), "give either ends_at or duration (or every, for a repeating one)"),
        (
            "silence",
            _add(duration="1h", ends_at="2026-01-01T03:00:00Z"),
            "give either ends_at or duration, not both",
        ),
        ("silence", _add(duration="soon"), "invalid duration 'soon'"),
        ("silence", _add(duration="0s"), "duration: Input should be greater than 0"),
        ("silence", _add(duration="1h", reason="x"), "reason: unknown field"),
        ("silence", {"action": "expire", "id": "nope"}, "no silence with id 'nope'"),
        ("silence", {"action": "expire"}, "id: Field required"),
        ("ack", {"id": "nope", "by": "ben"}, "no open alert with id 'nope'"),
        ("ack", {"id": "nope"}, "by: Field required"),
        ("ack", {"id": "nope", "by": "ben", "alert": "x"}, "alert: unknown field"),
        ("silence", b'{"action": "list", "x": "' + b"y" * 70_000 + b'"}', "command too large"),
    ],
    ids=[
        "malformed-json",
        "json-array",
        "json-string",
        "unknown-command",
        "unknown-action",
        "missing-action",
        "missing-comment",
        "blank-comment",
        "missing-created-by",
        "no-matchers",
        "bad-matcher-label",
        "bad-matcher-regex",
        "bad-matcher-syntax",
        "naive-ends-at",
        "naive-starts-at",
        "end-in-the-past",
        "window-in-the-past",
        "end-before-start",
        "no-end",
        "two-ends",
        "bad-duration",
        "zero-duration",
        "unknown-field",
        "unknown-silence-id",
        "expire-without-id",
        "unknown-alert-id",
        "ack-without-by",
        "ack-unknown-field",
        "oversize",
    ],
)
def test_bad_command_is_refused_naming_the_problem_and_changes_nothing(
    pipeline: Pipeline, command: str, payload: dict[str, Any] | bytes, error: str
) -> None:
    """A malformed command gets ``ok: false`` with a specific error, and nothing changes."""
    pipeline.send("silence", _add(matchers=["site=plant-c"], duration="1h"))
    before = pipeline.snapshot()
    reply = pipeline.send(command, payload)
    assert (reply["ok"], reply["command"]) == (False, command)
    assert error in reply["error"]
    assert pipeline.snapshot() == before


def test_ack_of_a_pending_alert_is_refused(pipeline: Pipeline) -> None:
    """Only a firing alert can be acknowledged."""
    pipeline.engine.observe(
        [Observation("plant-b", "cnc-2", "cnc-mill", T0 + 4 * SECOND, {}, 0.6, True)]
    )
    pipeline.engine.commit()
    (pending,) = [a for a in pipeline.engine.open_alerts() if a.asset == "cnc-2"]
    reply = pipeline.send("ack", {"id": pending.id, "by": "ben"})
    assert (reply["ok"], reply["error"]) == (False, f"alert {pending.id} is pending, not firing")
    assert pending.acked_by is None


def test_bad_command_reply_keeps_the_request_id(pipeline: Pipeline) -> None:
    """Even a refused command's reply carries its request id."""
    reply = pipeline.send("silence", _add(request_id="r9", comment=None, duration="1h"))
    assert (reply["ok"], reply["request_id"]) == (False, "r9")


# --- shelve ---------------------------------------------------------------------------------


def _shelve(pipeline: Pipeline, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": "r5",
        "action": "shelve",
        "id": pipeline.firing.id,
        "duration": "2h",
        "by": "ana",
        "comment": "sensor replaced tomorrow",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def test_shelve_sets_a_firing_alert_aside_until_its_end(pipeline: Pipeline) -> None:
    """``shelve`` replies with the alert and the shelf: from now, for its duration, who, why."""
    alert_id = pipeline.firing.id
    reply = pipeline.send("shelve", _shelve(pipeline))
    assert (reply["ok"], reply["command"], reply["alert"]["id"]) == (True, "shelve", alert_id)
    assert reply["shelf"] == {
        "alert_id": alert_id,
        "by": "ana",
        "comment": "sensor replaced tomorrow",
        "starts_at": NOW_TEXT,
        "ends_at": "2026-01-01T03:00:00.000Z",
    }


def test_shelve_is_kept_in_the_state_file(pipeline: Pipeline) -> None:
    """The shelf is saved to alerts.db, so it survives a restart."""
    pipeline.send("shelve", _shelve(pipeline))
    with closing(sqlite3.connect(pipeline.path)) as conn:
        (data,) = conn.execute("SELECT data FROM shelves").fetchone()
    assert orjson.loads(data)["by"] == "ana"


def test_shelve_publishes_the_asset_health_marked_shelved(pipeline: Pipeline) -> None:
    """The asset's health is published again, its alert marked shelved."""
    pipeline.send("shelve", _shelve(pipeline))
    topic = "meshwatch/health/plant-a/cnc-1"
    latest = [orjson.loads(p) for t, p, _ in pipeline.publisher.messages if t == topic][-1]
    assert latest["alerts"][0]["shelved_by"] == "ana"


def test_unshelve_ends_the_shelf_now(pipeline: Pipeline) -> None:
    """``unshelve`` replies with the shelf as ended now; the alert is no longer shelved."""
    pipeline.send("shelve", _shelve(pipeline))
    reply = pipeline.send("shelve", {"action": "unshelve", "id": pipeline.firing.id, "by": "ben"})
    assert (reply["ok"], reply["shelf"]["ends_at"]) == (True, NOW_TEXT)
    assert len(pipeline.engine.shelves) == 0


def test_shelve_list_shows_each_shelf_with_its_alert(pipeline: Pipeline) -> None:
    """``list`` returns the shelves in force, each with the alert it holds."""
    pipeline.send("shelve", _shelve(pipeline))
    reply = pipeline.send("shelve", {"action": "list"})
    [shelf] = reply["shelves"]
    assert (shelf["by"], shelf["alert"]["id"], shelf["alert"]["asset"]) == (
        "ana",
        pipeline.firing.id,
        "cnc-1",
    )


def test_shelving_a_pending_alert_is_refused(pipeline: Pipeline) -> None:
    """Only a firing alert can be shelved: a pending one has not reached anybody."""
    pipeline.engine.observe(
        [Observation("plant-b", "cnc-2", "cnc-mill", T0 + 4 * SECOND, {}, 0.6, True)]
    )
    pipeline.engine.commit()
    (pending,) = [a for a in pipeline.engine.open_alerts() if a.asset == "cnc-2"]
    reply = pipeline.send(
        "shelve", {"action": "shelve", "id": pending.id, "duration": "1h", "by": "x"}
    )
    assert (reply["ok"], reply["error"]) == (False, f"alert {pending.id} is pending, not firing")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"action": None}, "Unable to extract tag using discriminator"),
        ({"action": "snooze"}, "does not match any of the expected tags"),
        ({"id": None}, "id: Field required"),
        ({"id": ""}, "id: String should have at least 1 character"),
        ({"duration": None}, "duration: Field required"),
        ({"duration": "soon"}, "invalid duration 'soon'"),
        ({"duration": "0s"}, "a shelf needs a duration above 0"),
        ({"duration": "2d"}, "a shelf lasts at most 1d (asked for 2d)"),
        ({"by": None}, "by: Field required"),
        ({"by": "   "}, "a shelf needs by"),
        ({"until": "tomorrow"}, "until: unknown field"),
        ({"id": "0123456789abcdef"}, "no open alert with id '0123456789abcdef'"),
    ],
    ids=[
        "missing-action",
        "unknown-action",
        "missing-id",
        "empty-id",
        "missing-duration",
        "bad-duration",
        "zero-duration",
        "longer-than-a-day",
        "missing-by",
        "blank-by",
        "unknown-field",
        "unknown-alert-id",
    ],
)
def test_bad_shelve_command_is_refused_naming_the_problem_and_changes_nothing(
    pipeline: Pipeline, fields: dict[str, Any], error: str
) -> None:
    """A malformed shelve, or one for an alert that is not firing, is refused; nothing changes."""
    before = pipeline.snapshot()
    reply = pipeline.send("shelve", _shelve(pipeline, **fields))
    assert (reply["ok"], reply["command"], reply["request_id"]) == (False, "shelve", "r5")
    assert error in reply["error"]
    assert pipeline.snapshot() == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"action": "unshelve", "id": "0123456789abcdef"}, "no open alert with id"),
        ({"action": "unshelve"}, "id: Field required"),
        ({"action": "unshelve", "id": "FIRING"}, "is not shelved"),
    ],
    ids=["unknown-alert-id", "missing-id", "not-shelved"],
)
def test_bad_unshelve_command_is_refused_and_changes_nothing(
    pipeline: Pipeline, body: dict[str, Any], error: str
) -> None:
    """Unshelving an unknown alert, or one that is not shelved, is refused; nothing changes."""
    if body.get("id") == "FIRING":  # the firing alert, which is not shelved
        body = {**body, "id": pipeline.firing.id}
    before = pipeline.snapshot()
    reply = pipeline.send("shelve", body)
    assert reply["ok"] is False
    assert error in reply["error"]
    assert pipeline.snapshot() == before
