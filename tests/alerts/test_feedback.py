"""Feedback from maintenance staff (`alerts.commands.feedback`): verdicts and model resets.

Commands go through `alerts.commands.handler.handle`, as the command subscription sends
them, to an engine on a real alerts.db (`plantkit.Plant`) and a real models.db feedback log.
A fault on cnc-1 at plant-a fires the ``anomaly`` warning of `plantkit.quick_rules` at 3 s of
event time; its condition began with the first faulty reading, at 1 s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from plantkit import CNC_A, CNC_B, FAST_ROUTE, WALL0, Plant, at, prompt_rules, quick_rules

from alerts import state
from alerts.commands import handler
from alerts.commands.feedback import FeedbackDesk
from alerts.labels import Label, Verdict, read_labels
from alerts.state import AlertState, Changes
from ingest.errors import StoreError
from models.feedback import FeedbackLog

FIRED = [("mqtt", "anomaly", "cnc-1", "firing"), ("log", "anomaly", "cnc-1", "firing")]
RESOLVED = [("mqtt", "anomaly", "cnc-1", "resolved"), ("log", "anomaly", "cnc-1", "resolved")]


class Desk:
    """Sends commands to a plant's engine with a feedback log, as the pipeline wires them."""

    def __init__(self, plant: Plant, models: FeedbackLog | None) -> None:
        self.plant = plant
        self.models = models

    def send(self, command: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return handler.handle(
            self.plant.desk, command, raw, FeedbackDesk(self.plant.engine, self.models)
        )

    def verdict(self, verdict: str, alert_id: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "request_id": "r8",
            "id": alert_id or self.plant.open_alert("anomaly", CNC_A).id,
            "verdict": verdict,
            "by": "ana",
            "comment": "new coolant pump, runs warmer",
            **fields,
        }
        return self.send("feedback", {k: v for k, v in body.items() if v is not None})

    def reset(self, **fields: Any) -> dict[str, Any]:
        body = {
            "request_id": "r9",
            "action": "reset",
            "site": "plant-a",
            "asset": "cnc-1",
            "by": "ana",
            "comment": "spindle bearing replaced",
            **fields,
        }
        return self.send("model", {k: v for k, v in body.items() if v is not None})

    def teachings(self) -> list[tuple[str, str, str, int | None, int | None]]:
        """(key, action, asset, start, end) of each pending model change."""
        assert self.models is not None
        return [(c.key, c.action, c.asset, c.start_ns, c.end_ns) for c in self.models.pending()]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused command must leave as it was."""
        with closing(sqlite3.connect(self.plant.path)) as conn:
            stored = conn.execute(
                "SELECT (SELECT group_concat(data) FROM episodes),"
                " (SELECT count(*) FROM labels), (SELECT count(*) FROM outbox)"
            ).fetchone()
        return (
            [a.to_state() for a in self.plant.engine.open_alerts()],
            stored,
            self.teachings() if self.models is not None else None,
            len(self.plant.publisher.messages),
        )


@pytest.fixture
def models(tmp_path: Path) -> Iterator[FeedbackLog]:
    """The models' feedback log on a models.db of this test."""
    log = FeedbackLog(tmp_path / "models.db")
    yield log
    log.close()


@pytest.fixture
def firing(plant: Callable[..., Plant], models: FeedbackLog) -> Desk:
    """A plant whose cnc-1 fires the anomaly warning (told once), and a desk for it."""
    p = plant(rules=quick_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    assert p.told() == FIRED
    return Desk(p, models)


@pytest.fixture
def resolved(plant: Callable[..., Plant], models: FeedbackLog) -> Desk:
    """A plant whose cnc-1 fired the anomaly warning and resolved it (both told)."""
    p = plant(rules=prompt_rules(), route=FAST_ROUTE)
    p.run(3, faulty=[CNC_A])
    p.run(20)
    assert p.told() == FIRED + RESOLVED
    return Desk(p, models)


def _resolved_alert(desk: Desk) -> dict[str, Any]:
    [notification] = [n for n in desk.plant.outbox() if n.alerts[0]["state"] == "resolved"][:1]
    return dict(notification.alerts[0])


# --- normal -------------------------------------------------------------------------------


def test_normal_resolves_a_firing_alert_and_tells_the_receivers_once(firing: Desk) -> None:
    """The alert resolves now; each receiver that heard it fire hears it resolve, once."""
    reply = firing.verdict("normal")
    assert (reply["ok"], reply["resolved"], reply["alert"]["state"]) == (True, True, "resolved")
    firing.plant.run(60)
    assert firing.plant.told() == FIRED + RESOLVED


def test_the_resolution_says_who_resolved_it_by_feedback_and_why(firing: Desk) -> None:
    """The resolution's message names the feedback, who gave it and the comment."""
    firing.verdict("normal")
    firing.plant.run(2)
    assert _resolved_alert(firing)["message"].endswith(
        "; resolved by feedback from ana: normal for this machine (new coolant pump, runs warmer)"
    )


def test_normal_asks_the_model_to_learn_the_episode(firing: Desk) -> None:
    """The model is asked to learn the readings flagged from the episode's start to now."""
    alert_id = firing.plant.open_alert("anomaly", CNC_A).id
    reply = firing.verdict("normal")
    assert reply["teaching"] == "requested"
    assert firing.teachings() == [(f"accept:{alert_id}", "accept", "cnc-1", at(1), at(3))]


def test_a_verdict_is_saved_as_a_label_with_who_when_why_and_the_episode(firing: Desk) -> None:
    """alerts.db holds the label: verdict, who, when, comment, the alert and its episode."""
    alert = firing.plant.open_alert("anomaly", CNC_A)
    firing.verdict("normal")
    assert read_labels(firing.plant.path) == [
        Label(
            alert.id,
            Verdict.NORMAL,
            "ana",
            "new coolant pump, runs warmer",
            WALL0 + 3,
            "anomaly",
            "warning",
            "plant-a",
            "cnc-1",
            "cnc-mill",
            at(1),
            at(3),
        )
    ]


def test_normal_twice_teaches_once(firing: Desk) -> None:
    """The same verdict again (or the command delivered again) asks nothing more of the model."""
    alert_id = firing.plant.open_alert("anomaly", CNC_A).id
    firing.verdict("normal")
    again = firing.verdict("normal", alert_id)
    assert (again["ok"], again["teaching"], again["resolved"]) == (True, "already", False)
    assert len(firing.teachings()) == 1


def test_a_limit_alert_marked_normal_resolves_but_teaches_no_model(
    plant: Callable[..., Plant], models: FeedbackLog
) -> None:
    """A limit rule has no model: its alert is labelled and resolved, nothing is taught."""
    p = plant(rules="rules: [{name: hot, type: limit, condition: spindle_temp_c > 90}]")
    p.run(2, metrics={CNC_A: {"spindle_temp_c": 95.0}})
    desk = Desk(p, models)
    reply = desk.verdict("normal", p.open_alert("hot", CNC_A).id)
    assert (reply["resolved"], reply["teaching"], desk.teachings()) == (True, "none", [])


def test_without_models_a_verdict_of_normal_is_kept_and_resolves(firing: Desk) -> None:
    """With models off, a verdict is still a label and still resolves the alert."""
    reply = Desk(firing.plant, None).verdict("normal")
    assert (reply["ok"], reply["resolved"], reply["teaching"]) == (True, True, "none")


# --- fault, and verdicts that change ------------------------------------------------------


def test_fault_is_labelled_and_leaves_the_alert_firing(firing: Desk) -> None:
    """A confirmed fault is kept; the alert fires on, and no model is taught."""
    alert_id = firing.plant.open_alert("anomaly", CNC_A).id
    reply = firing.verdict("fault")
    assert (reply["ok"], reply["resolved"], reply["teaching"]) == (True, False, "none")
    assert firing.plant.open_alert("anomaly", CNC_A).state == "firing"
    [label] = read_labels(firing.plant.path)
    assert (label.alert_id, label.verdict, label.end) == (alert_id, Verdict.FAULT, None)
    assert firing.teachings() == []


def test_a_later_verdict_replaces_the_earlier_which_stays_in_the_history(firing: Desk) -> None:
    """``fault`` then ``normal``: the label says normal, with the fault in its history."""
    alert_id = firing.plant.open_alert("anomaly", CNC_A).id
    firing.verdict("fault", comment="looked worn")
    reply = firing.verdict("normal", alert_id)
    assert (reply["replaced"], reply["resolved"]) == ("fault", True)
    [label] = read_labels(firing.plant.path)
    assert label.verdict is Verdict.NORMAL
    assert [(h["verdict"], h["comment"]) for h in label.history] == [("fault", "looked worn")]


def test_fault_after_normal_keeps_what_the_model_learned(resolved: Desk) -> None:
    """The label becomes a fault; the teaching stays (the reply names the verdict replaced)."""
    alert_id = _resolved_alert(resolved)["id"]
    resolved.verdict("normal", alert_id)
    reply = resolved.verdict("fault", alert_id)
    assert (reply["ok"], reply["replaced"], reply["teaching"]) == (True, "normal", "none")
    assert len(resolved.teachings()) == 1


# --- alerts that resolved -------------------------------------------------------------------


def test_feedback_on_a_resolved_alert_is_taken_and_tells_nobody(resolved: Desk) -> None:
    """After the alert cleared: labelled, the episode up to its resolution taught; no notice."""
    alert = _resolved_alert(resolved)
    reply = resolved.verdict("normal", alert["id"])
    assert (reply["ok"], reply["resolved"], reply["label"]["end"]) == (
        True,
        False,
        alert["resolved_at"],
    )
    assert resolved.teachings()[0][3:] == (at(1), at(13))
    resolved.plant.run(5)
    assert resolved.plant.told() == FIRED + RESOLVED


def test_feedback_on_an_alert_resolved_before_a_restart_is_taken(resolved: Desk) -> None:
    """Resolved alerts are kept in alerts.db: a restart does not forget them."""
    alert_id = _resolved_alert(resolved)["id"]
    resolved.plant.crash()
    assert resolved.verdict("fault", alert_id)["ok"] is True


def test_resolved_alerts_are_kept_at_most_keep_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond `KEEP_RESOLVED` alerts, the oldest are forgotten."""
    monkeypatch.setattr(state, "KEEP_RESOLVED", 3)
    alerts = AlertState(tmp_path / "alerts.db")
    for n in range(5):
        alerts.save(Changes(resolved={f"a{n}": {"n": n}}), WALL0 + n)
    assert [alerts.resolved(f"a{n}") for n in range(5)] == [None, None] + [
        {"n": n} for n in (2, 3, 4)
    ]
    alerts.close()


def test_resolved_alerts_are_kept_at_most_thirty_days(tmp_path: Path) -> None:
    """A resolved alert saved more than 30 days ago is forgotten."""
    alerts = AlertState(tmp_path / "alerts.db")
    alerts.save(Changes(resolved={"old": {}}), WALL0)
    alerts.save(Changes(resolved={"new": {}}), WALL0 + state.KEEP_RESOLVED_SECONDS + 1)
    assert (alerts.resolved("old"), alerts.resolved("new")) == (None, {})
    alerts.close()


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not JSON: "),
        ({"verdict": "maybe"}, "verdict: Input should be 'normal' or 'fault'"),
        ({"verdict": None}, "verdict: Field required"),
        ({"by": None}, "by: Field required"),
        ({"by": "   "}, "a verdict needs by (who gives it)"),
        ({"id": ""}, "id: String should have at least 1 character"),
        ({"id": "0123456789abcdef"}, "no alert with id '0123456789abcdef': none is open"),
        ({"rating": 5}, "rating: unknown field"),
    ],
    ids=[
        "malformed-json",
        "unknown-verdict",
        "missing-verdict",
        "missing-by",
        "blank-by",
        "empty-id",
        "unknown-alert-id",
        "unknown-field",
    ],
)
def test_bad_feedback_is_refused_naming_the_problem_and_changes_nothing(
    firing: Desk, body: dict[str, Any] | bytes, error: str
) -> None:
    """A malformed verdict, or one on an unknown alert, is refused; nothing changes."""
    before = firing.snapshot()
    if isinstance(body, dict):
        body = {
            "id": firing.plant.open_alert("anomaly", CNC_A).id,
            "verdict": "normal",
            "by": "ana",
            **body,
        }
        body = {k: v for k, v in body.items() if v is not None}
    reply = firing.send("feedback", body)
    assert (reply["ok"], reply["command"]) == (False, "feedback")
    assert error in reply["error"]
    assert firing.snapshot() == before


def test_feedback_on_a_pending_alert_is_refused(firing: Desk) -> None:
    """A pending alert reached nobody: there is nothing to judge yet."""
    firing.plant.run(1, faulty=[CNC_B])
    pending = firing.plant.open_alert("anomaly", CNC_B)
    before = firing.snapshot()
    reply = firing.verdict("normal", pending.id)
    assert reply["error"] == f"alert {pending.id} is pending, not firing: nobody was told of it"
    assert firing.snapshot() == before


def test_a_label_that_cannot_be_saved_withdraws_the_teaching(
    firing: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk refuses the verdict: the model is not taught, the alert still fires."""

    def full(changes: Changes, now: float) -> None:
        raise StoreError("database or disk is full")

    monkeypatch.setattr(firing.plant.engine.saver.state, "save", full)
    reply = firing.verdict("normal")
    assert (reply["ok"], firing.teachings()) == (False, [])
    assert firing.plant.open_alert("anomaly", CNC_A).state == "firing"


# --- model reset ----------------------------------------------------------------------------


def test_model_reset_is_recorded_for_the_scoring_thread(firing: Desk) -> None:
    """The reset is saved in models.db, for the scoring thread to apply."""
    reply = firing.reset()
    assert (reply["ok"], reply["reset"]["asset"], reply["repeated"]) == (True, "cnc-1", False)
    assert firing.teachings() == [("reset:r9", "reset", "cnc-1", None, None)]


def test_a_model_reset_delivered_twice_resets_once(firing: Desk) -> None:
    """The same request again (a redelivery) is recognised by its request id."""
    firing.reset()
    assert firing.reset()["repeated"] is True
    assert len(firing.teachings()) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"site": "plant a"}, "site: 'plant a' is not an id (it must match [A-Za-z0-9_.-]{1,64})"),
        ({"asset": None}, "asset: Field required"),
        ({"asset": "press-9"}, "no asset plant-a/press-9 is known to the pipeline"),
        ({"action": "retrain"}, "action: Input should be 'reset'"),
        ({"by": " "}, "a model reset needs by (who asks for it)"),
    ],
    ids=["bad-site", "missing-asset", "unknown-asset", "unknown-action", "blank-by"],
)
def test_bad_model_reset_is_refused_and_changes_nothing(
    firing: Desk, fields: dict[str, Any], error: str
) -> None:
    """A malformed reset, or one for an asset never seen, is refused; nothing changes."""
    before = firing.snapshot()
    reply = firing.reset(**fields)
    assert (reply["ok"], reply["command"]) == (False, "model")
    assert error in reply["error"]
    assert firing.snapshot() == before


def test_model_reset_with_models_off_is_refused(firing: Desk) -> None:
    """No models, no model to reset."""
    reply = Desk(firing.plant, None).reset()
    assert (
        reply["error"] == "the models are off (models.enabled: false): there is no model to reset"
    )


# --- metrics --------------------------------------------------------------------------------


def test_feedback_and_resets_are_counted(firing: Desk) -> None:
    """``meshwatch_feedback_total`` counts verdicts by kind; resets have their own counter."""
    firing.verdict("fault")
    firing.reset()
    registry = firing.plant.engine.metrics.registry
    assert registry.get_sample_value("meshwatch_feedback_total", {"verdict": "fault"}) == 1
    assert registry.get_sample_value("meshwatch_feedback_total", {"verdict": "normal"}) is None
    assert registry.get_sample_value("meshwatch_model_resets_total") == 1
