"""The operators' side of the engine: silences, acks and shelves, each saved before the reply.

Each command changes the engine's memory, saves the change with the pending ones, and only
then publishes the health it changes; a save that fails takes the change back and raises
`CommandError` with `UNSAVED`, so a command either holds or changed nothing. Commands run on
the MQTT network thread: each holds the engine's lock.
"""

from __future__ import annotations

import logging
from typing import Any

from alerts.base import Alert
from alerts.engine import AlertEngine
from alerts.errors import CommandError
from alerts.shelves import Shelf
from alerts.silences import Silence

log = logging.getLogger(__name__)

UNSAVED = "the alert state could not be saved (is the data dir's disk full?); nothing changed"


class AlertDesk:
    """Takes silences, acks and shelves for the engine.

    Parameters
    ----------
    engine
        The alert engine.
    """

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def add_silence(self, silence: Silence) -> Silence:
        """Add a silence, save it, and update the health of the assets it covers."""
        silences = self.engine.silences
        with self.engine.lock:
            before = silences.get(silence.id)
            silences.add(silence)
            if not self._silence_changed(silence):
                silences.remove(silence.id, before)
                raise CommandError(UNSAVED)
            return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (raises `CommandError` for an unknown or expired id)."""
        silences = self.engine.silences
        with self.engine.lock:
            before = silences.get(silence_id)
            ended = silences.expire(silence_id)
            if not self._silence_changed(ended):
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
            if not engine.save_and_tell():
                ep.alert.acked_by = None
                ep.alert.extra.pop("ack")
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
            if not self._shelf_changed(alert, shelf.to_state()):
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
            if not self._shelf_changed(alert, None):
                engine.shelves.put(alert_id, before)
                raise CommandError(UNSAVED)
            engine.dispatcher.remind(alert)
            log.info("alert %s unshelved by %s", alert_id, by or "-")
            return alert, before.ended(engine.wall())

    def _shelf_changed(self, alert: Alert, shelf: dict[str, Any] | None) -> bool:
        """Save a shelf (None: its end) and publish the asset's health; False if unsaved."""
        engine = self.engine
        engine.saver.changes.shelves[alert.id] = shelf
        if not engine.save_and_tell():
            del engine.saver.changes.shelves[alert.id]
            return False
        now = engine.clock.now()
        engine.health.mark_alert(alert, now, engine.assets)
        engine.retell(now)
        return True

    def _silence_changed(self, silence: Silence) -> bool:
        """Save a silence and publish the health of every asset; False if unsaved."""
        engine = self.engine
        engine.saver.changes.silences.append(silence.to_state())
        if not engine.save_and_tell():
            engine.saver.changes.silences.pop()
            return False
        now = engine.clock.now()
        engine.health.silence_ids = engine.muting(now)
        engine.health.mark_all(engine.assets, now)
        engine.retell(now)
        return True
