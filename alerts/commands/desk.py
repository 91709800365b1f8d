"""The operators' side of the engine: silences, acks and shelves, each saved before the reply.

Each command changes the engine's memory, saves the change with the pending ones (and its
``alert_action`` record for the store, `alerts.history.ledger`), and only then publishes the
health it changes; a save that fails takes the change back and raises
`CommandError` with `UNSAVED`, so a command either holds or changed nothing. Commands run on
the MQTT network thread: each holds the engine's lock.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from alerts.base import Alert
from alerts.engine import AlertEngine
from alerts.errors import CommandError
from alerts.history.ledger import Ledger
from alerts.history.records import alert_action, silence_action
from alerts.shelves import Shelf
from alerts.silences import Silence
from ingest.base import Point

log = logging.getLogger(__name__)

UNSAVED = "the alert state could not be saved (is the data dir's disk full?); nothing changed"


class AlertDesk:
    """Takes silences, acks and shelves for the engine.

    Parameters
    ----------
    engine
        The alert engine.
    ledger
        Where each action's record for the store goes (one of its own by default).
    """

    def __init__(self, engine: AlertEngine, ledger: Ledger | None = None) -> None:
        self.engine = engine
        self.ledger = ledger or Ledger(engine)

    def add_silence(self, silence: Silence) -> Silence:
        """Add a silence, save it, and update the health of the assets it covers."""
        silences = self.engine.silences
        with self.engine.lock:
            before = silences.get(silence.id)
            silences.add(silence)
            if not self._silence_changed(silence, "silence"):
                silences.remove(silence.id, before)
                raise CommandError(UNSAVED)
            return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (raises `CommandError` for an unknown or expired id)."""
        silences = self.engine.silences
        with self.engine.lock:
            before = silences.get(silence_id)
            ended = silences.expire(silence_id)
            if not self._silence_changed(ended, "expire"):
                silences.remove(silence_id, before)
                raise CommandError(UNSAVED)
            return ended

    def ack(self, alert_id: str, by: str, comment: str = "") -> Alert:
        """Acknowledge a firing alert: no more repeats for this episode."""
        engine = self.engine
        with engine.lock:
            key, ep = engine.episodes.firing(alert_id)
            ep.alert.acked_by = by
            ep.alert.extra["ack"] = {"by": by, "comment": comment, "at": engine.wall()}
            engine.saver.changes.episodes[key] = ep.to_state()
            ledger = self.ledger
            record = ledger.record(alert_action("ack", ep.alert, ledger.stamp(), by, comment))
            if not engine.save_and_tell():
                ep.alert.acked_by = None
                ep.alert.extra.pop("ack")
                ledger.withdraw(record)
                raise CommandError(UNSAVED)
            log.info("alert %s acknowledged by %s: %s", alert_id, by, comment or "-")
            return ep.alert

    def shelve(
        self, alert_id: str, by: str, seconds: float, comment: str = ""
    ) -> tuple[Alert, Shelf]:
        """Shelve a firing alert for `seconds` of wall time (again: a new shelf replaces it)."""
        engine = self.engine
        with engine.lock:
            alert = engine.episodes.firing(alert_id)[1].alert
            shelf = Shelf.create(alert_id, by, comment, engine.wall(), seconds)
            before = engine.shelves.put(alert_id, shelf)
            until = int(shelf.ends_at * 1e9)
            record = alert_action("shelve", alert, self.ledger.stamp(), by, comment, until=until)
            if not self._shelf_changed(alert, shelf.to_state(), record):
                engine.shelves.put(alert_id, before)
                raise CommandError(UNSAVED)
            log.info("alert %s shelved: %s", alert_id, shelf.note())
            return alert, shelf

    def unshelve(self, alert_id: str, by: str) -> tuple[Alert, Shelf]:
        """End an alert's shelf now; still firing, it is announced again."""
        engine = self.engine
        with engine.lock:
            alert = engine.episodes.firing(alert_id)[1].alert
            before = engine.shelves.put(alert_id, None)
            if before is None:
                raise CommandError(f"alert {alert_id} is not shelved")
            record = alert_action("unshelve", alert, self.ledger.stamp(), by)
            if not self._shelf_changed(alert, None, record):
                engine.shelves.put(alert_id, before)
                raise CommandError(UNSAVED)
            engine.dispatcher.remind(alert)
            log.info("alert %s unshelved by %s", alert_id, by or "-")
            return alert, before.ended(engine.wall())

    def _shelf_changed(self, alert: Alert, shelf: dict[str, Any] | None, record: Point) -> bool:
        """Save a shelf (None: its end) and publish the asset's health; False if unsaved."""
        engine = self.engine
        engine.saver.changes.shelves[alert.id] = shelf
        self.ledger.record(record)
        if not engine.save_and_tell():
            del engine.saver.changes.shelves[alert.id]
            self.ledger.withdraw(record)
            return False
        now = engine.clock.now()
        engine.health.mark_alert(alert, now, engine.assets)
        engine.retell(now)
        return True

    def _silence_changed(self, silence: Silence, action: Literal["silence", "expire"]) -> bool:
        """Save a silence and publish the health of every asset; False if unsaved."""
        engine = self.engine
        state = silence.to_state()
        engine.saver.changes.silences.append(state)
        record = self.ledger.record(silence_action(action, state, self.ledger.stamp()))
        if not engine.save_and_tell():
            engine.saver.changes.silences.pop()
            self.ledger.withdraw(record)
            return False
        now = engine.clock.now()
        engine.health.silence_ids = engine.muting(now)
        engine.health.mark_all(engine.assets, now)
        engine.retell(now)
        return True
