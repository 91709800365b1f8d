"""Feedback to the models (`models.feedback`): teachings and resets, recorded, then applied.

The command thread records a change in models.db; the scoring thread applies it before its
next batch and saves the changed model with the change marked applied, in one transaction.
A crash is a store dropped without `close` (SQLite commits are what a SIGKILL leaves).
The models here use ``zscore``, a detector that keeps learning what it is taught.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from modelkit import Clock, deviated, healthy, profile, reading, ts

from ingest.base import Reading
from models.checkpoints import CheckpointStore
from models.feedback import KEEP_APPLIED, FeedbackLog, ModelChange, settle
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor

WARMUP = 200
ASSET = ("s1", "cnc-1")  # `modelkit.reading`'s site
# The episode the tests teach: readings 300 to 359, the spindle 6 sigma hot.
EPISODE = (300, 360)


@dataclass
class Scoring:
    """A scoring processor on a real models.db with its feedback log, as `meshwatch run` has."""

    path: Path
    processor: ScoringProcessor
    feedback: FeedbackLog

    @property
    def registry(self) -> ModelRegistry:
        return self.processor.registry

    def score(self, readings: list[Reading]) -> list[bool]:
        """Score one batch; for each reading, whether it was flagged for the hot spindle.

        Other metrics' noise crosses the threshold now and then (it is the warm-up's 99th
        percentile); the pattern taught is the spindle's temperature.
        """
        return [
            bool(p.fields["anomalous"]) and p.fields["top_metric"] == "spindle_temp_c"
            for p in self.processor.process(readings)
        ]

    def accept(self, start: int, end: int, key: str = "accept:a1") -> bool:
        """What a verdict of normal on the episode from reading `start` to `end` records."""
        ok = self.feedback.request(
            key, "accept", *ASSET, by="ana", comment="", now=0.0, start_ns=ts(start), end_ns=ts(end)
        )
        self.feedback.poke()
        return ok

    def reset(self, key: str = "reset:r1") -> bool:
        ok = self.feedback.request(key, "reset", *ASSET, by="ana", comment="new bearing", now=0.0)
        self.feedback.poke()
        return ok

    def rows(self) -> list[tuple[str, float | None, int | None]]:
        """(key, applied_at, taught) of every change in models.db."""
        with closing(sqlite3.connect(self.path)) as conn:
            return conn.execute(
                "SELECT key, applied_at, taught FROM feedback ORDER BY id"
            ).fetchall()


def _open(path: Path) -> Scoring:
    registry = ModelRegistry(
        ProfileSelector((profile("zscore", warmup=WARMUP).model_copy(update={"name": "default"}),)),
        CheckpointStore(path),
        checkpoint_interval=3600.0,  # no checkpoint but those the tests cause
        clock=Clock(),
    )
    feedback = FeedbackLog(path)
    return Scoring(path, ScoringProcessor(registry, feedback), feedback)


@pytest.fixture
def scoring(checkpoint_path: Path) -> Iterator[Scoring]:
    """A scoring processor whose cnc-1 learned 300 healthy readings."""
    s = _open(checkpoint_path)
    rng = random.Random(1)
    s.score([reading(ASSET[1], i, healthy(rng)) for i in range(300)])
    yield s
    s.processor.close()
    s.feedback.close()


def _hot(start: int, end: int, seed: int = 5) -> list[Reading]:
    rng = random.Random(seed)
    return [reading(ASSET[1], i, deviated(rng, "spindle_temp_c", 6.0)) for i in range(start, end)]


def _crash(s: Scoring) -> Scoring:
    """Drop the processor unsaved and open a new one on the same file: a SIGKILL."""
    s.registry.checkpoints.close()  # type: ignore[union-attr]
    s.feedback.close()
    return _open(s.path)


# --- the log ---------------------------------------------------------------------------------


def test_a_change_requested_twice_is_recorded_once(tmp_path: Path) -> None:
    """The same key again (a redelivered command) is refused: False, and one row."""
    log = FeedbackLog(tmp_path / "models.db")
    first = log.request(
        "accept:a1", "accept", *ASSET, by="ana", comment="", now=0, start_ns=1, end_ns=2
    )
    again = log.request(
        "accept:a1", "accept", *ASSET, by="ben", comment="", now=1, start_ns=1, end_ns=2
    )
    assert (first, again, [c.by for c in log.pending()]) == (True, False, ["ana"])
    log.close()


def test_a_withdrawn_change_is_not_pending(tmp_path: Path) -> None:
    """`withdraw` removes a change that was not applied."""
    log = FeedbackLog(tmp_path / "models.db")
    log.request("reset:r1", "reset", *ASSET, by="ana", comment="", now=0)
    log.withdraw("reset:r1")
    assert log.pending() == []
    log.close()


def test_an_accept_without_an_episode_is_refused() -> None:
    """An accept needs its episode's start and end, in order."""
    with pytest.raises(ValueError, match="needs start_ns <= end_ns"):
        ModelChange(1, "accept:a1", "accept", *ASSET, None, 5, "ana", "", 0.0)


def test_applied_changes_are_pruned_after_a_month(tmp_path: Path) -> None:
    """Rows applied more than `KEEP_APPLIED` ago go; pending and recent ones stay."""
    log = FeedbackLog(tmp_path / "models.db")
    for key in ("reset:old", "reset:new", "reset:pending"):
        log.request(key, "reset", *ASSET, by="ana", comment="", now=0)
    old, new, _ = log.pending()
    conn = sqlite3.connect(tmp_path / "models.db", isolation_level=None)
    settle(conn, [(old.id, 0)], 1.0)
    settle(conn, [(new.id, 0)], 2.0 + KEEP_APPLIED)
    keys = [k for (k,) in conn.execute("SELECT key FROM feedback ORDER BY id")]
    conn.close()
    assert keys == ["reset:new", "reset:pending"]
    log.close()


def test_a_new_log_is_waiting_so_the_first_batch_looks(tmp_path: Path) -> None:
    """Changes left pending by a crash are looked at by the first batch after a start."""
    log = FeedbackLog(tmp_path / "models.db")
    assert log.waiting
    log.taken()
    assert not log.waiting
    log.close()


# --- teaching ---------------------------------------------------------------------------------


def test_after_a_verdict_of_normal_the_same_pattern_no_longer_flags(scoring: Scoring) -> None:
    """The hot spindle is flagged; once taught as normal, the same pattern is not."""
    assert all(scoring.score(_hot(*EPISODE))[5:])
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    assert not any(scoring.score(_hot(360, 400, seed=6)))


def test_a_teaching_is_applied_before_the_next_batch_is_scored(scoring: Scoring) -> None:
    """The change is applied at the start of the batch: its readings meet the taught model."""
    scoring.score(_hot(*EPISODE))
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    assert scoring.rows() == [("accept:a1", None, None)]
    scoring.score(_hot(360, 361, seed=6))
    [(_, applied_at, taught)] = scoring.rows()
    assert (applied_at is not None, taught) == (True, EPISODE[1] - EPISODE[0])


def test_a_teaching_is_applied_on_a_tick_without_readings(scoring: Scoring) -> None:
    """A quiet pipeline applies it on its next tick."""
    scoring.score(_hot(*EPISODE))
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    scoring.processor.tick()
    assert scoring.rows()[0][2] == EPISODE[1] - EPISODE[0]


def test_a_taught_model_is_checkpointed_with_the_change(scoring: Scoring) -> None:
    """Applying saves the taught model: a store opened afresh has it, and no pending change."""
    scoring.score(_hot(*EPISODE))
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    scoring.processor.tick()
    again = _crash(scoring)
    assert again.feedback.pending() == []
    assert not any(again.score(_hot(360, 400, seed=6)))


def test_a_teaching_pending_at_a_crash_is_applied_after_it(scoring: Scoring) -> None:
    """Recorded, not applied, then a crash: the next start applies it to the saved model."""
    scoring.score(_hot(*EPISODE))
    scoring.registry.checkpoint()  # the flagged readings are in the saved model
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    again = _crash(scoring)
    again.processor.tick()
    assert again.rows()[0][2] == EPISODE[1] - EPISODE[0]
    assert not any(again.score(_hot(360, 400, seed=6)))


def test_an_applied_teaching_is_not_applied_twice(scoring: Scoring) -> None:
    """After the crash that follows an application, the change stays as it was applied."""
    scoring.score(_hot(*EPISODE))
    scoring.accept(EPISODE[0], EPISODE[1] - 1)
    scoring.processor.tick()
    before = scoring.rows()
    again = _crash(scoring)
    again.processor.tick()
    assert again.rows() == before
    assert not again.accept(EPISODE[0], EPISODE[1] - 1)  # the command delivered again


# --- reset ------------------------------------------------------------------------------------


def test_a_reset_model_warms_up_again(scoring: Scoring) -> None:
    """After a reset the asset's readings are warming up: it learns again from scratch."""
    scoring.reset()
    rng = random.Random(3)
    [point] = scoring.processor.process([reading(ASSET[1], 300, healthy(rng))])
    assert point.fields["warming_up"] is True


def test_a_reset_is_not_undone_by_an_older_checkpoint(scoring: Scoring) -> None:
    """The warm model was checkpointed; after a reset and a crash the fresh one loads."""
    scoring.registry.checkpoint()
    scoring.reset()
    scoring.processor.tick()
    again = _crash(scoring)
    model = again.registry.get(*ASSET, None)
    assert (model.learned, model.warming_up) == (0, True)


def test_a_reset_pending_at_a_crash_is_applied_after_it(scoring: Scoring) -> None:
    """Recorded, not applied, then a crash: the next start replaces the saved model."""
    scoring.registry.checkpoint()
    scoring.reset()
    again = _crash(scoring)
    again.processor.tick()
    assert again.registry.get(*ASSET, None).learned == 0
    assert again.rows()[0][1] is not None


def test_a_change_for_an_asset_without_a_model_creates_none(scoring: Scoring) -> None:
    """No model in memory nor on disk: nothing to teach, and no model made up for it."""
    scoring.feedback.request("reset:r2", "reset", "s1", "cnc-9", by="ana", comment="", now=0.0)
    scoring.feedback.poke()
    scoring.processor.tick()
    [(_, applied_at, taught)] = scoring.rows()
    assert (applied_at is not None, taught) == (True, 0)
    assert len(scoring.registry) == 1
    assert scoring.registry.checkpoints.profile_of(("s1", "cnc-9")) is None  # type: ignore[union-attr]
