"""Feedback from maintenance staff: a verdict on an alert, and a model reset.

No monitoring product lets the technician's verdict teach the model; this does. Two
commands (`alerts.commands`), handled on the MQTT network thread:

``feedback`` (``meshwatch feedback ALERT_ID normal|fault``)
    The alert is looked up among the open alerts and those resolved in the last 30 days
    (`alerts.state.KEEP_RESOLVED`); a pending alert (nobody was told of it) or an unknown id
    is refused and changes nothing. The verdict is saved as a label (`alerts.labels`) with
    who, when, why and the episode, durably, before the reply.

    - ``normal`` ("false alarm: this is normal for this machine"): for an anomaly alert,
      the asset's model is asked to learn the episode's flagged readings as normal
      (`models.feedback.FeedbackLog`, applied on the scoring thread before its next batch);
      if the alert still fires, it resolves now, its message saying who resolved it by
      feedback and why, and the receivers that heard it fire get the resolution. Limit and
      deadman alerts have no model to teach: they are labelled and resolved, and their rule
      stays as configured (change the limit, or silence the asset).
    - ``fault`` ("confirmed fault"): labelled; the alert is left as it is.

    A later verdict on the same alert replaces the earlier one (people correct themselves;
    the label keeps the history). ``fault`` after ``normal`` cannot un-teach the model:
    the reply says so, and ``meshwatch model reset`` makes it forget. ``normal`` twice teaches
    once (a command redelivered after a crash, too).

``model`` (``meshwatch model reset SITE/ASSET``)
    The asset's model is discarded on the scoring thread and learns again from scratch
    (warm-up). Refused for an asset the pipeline has never seen, or when models are off.

Order of the writes, so that a SIGKILL at any point loses nothing and does nothing twice:
the model change is recorded first (models.db), then the label (alerts.db), and only then
is the scoring thread told (`FeedbackLog.poke`); a label that cannot be saved withdraws the
change. The resolution comes last and is saved like any decision of the rules. paho
acknowledges a command after its handler returns, so a crash before the end redelivers it,
and a command handled twice changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from alerts.base import SITE_WIDE, Alert, State
from alerts.commands.desk import UNSAVED
from alerts.engine import AlertEngine
from alerts.errors import CommandError
from alerts.history.ledger import Ledger
from alerts.history.records import alert_action
from alerts.labels import Label, Verdict
from alerts.lifecycle import Episode
from alerts.state import KEEP_RESOLVED_SECONDS
from common.durations import format_duration
from ingest.errors import StoreError
from models.feedback import FeedbackLog

_NO_MODELS = "the models are off (models.enabled: false): there is no model to reset"


class FeedbackDesk:
    """Takes maintenance staff's verdicts and model resets for the engine and the models.

    Parameters
    ----------
    engine
        The alert engine (open alerts, resolved ones, labels, resolution).
    models
        The models' feedback log; None when models are off (verdicts teach nothing then).
    ledger
        Where each verdict's record for the store goes (one of its own by default).
    """

    def __init__(
        self, engine: AlertEngine, models: FeedbackLog | None, ledger: Ledger | None = None
    ) -> None:
        self.engine = engine
        self.models = models
        self.ledger = ledger or Ledger(engine)

    def give(self, alert_id: str, verdict: Verdict, by: str, comment: str) -> dict[str, Any]:
        """Record a verdict on an alert and act on it; return the reply's fields.

        Raises `CommandError` (nothing changed) for an unknown or pending alert, a blank
        `by`, or a failure to save.
        """
        engine = self.engine
        with engine.lock:
            episode, firing = self._known(alert_id)
            alert = episode.alert
            now = engine.wall()
            resolves = firing and verdict is Verdict.NORMAL
            # The episode ends when it resolved, or now if this verdict resolves it.
            at = max(engine.clock.now(), episode.since) if resolves else None
            end = at if resolves else alert.resolved_at
            before = engine.saver.state.label(alert_id)
            try:
                label = (
                    Label(
                        alert.id,
                        verdict,
                        by,
                        comment,
                        now,
                        alert.rule,
                        alert.severity.value,
                        alert.site,
                        alert.asset,
                        alert.kind,
                        episode.since,
                        end,
                    )
                    if before is None
                    else before.replaced_by(verdict, by, comment, now, end=end)
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            anomaly = alert.extra.get("type") == "anomaly"
            teaching = self._teach(label, anomaly) if verdict is Verdict.NORMAL else "none"
            try:
                self._save_label(label, alert)
            except CommandError:
                if teaching == "requested":
                    self._withdraw(label)
                raise
            if teaching == "requested":
                assert self.models is not None
                self.models.poke()
            if resolves:
                assert at is not None
                note = f"resolved by feedback from {label.by}: normal for this machine" + (
                    f" ({label.comment})" if label.comment else ""
                )
                alert = self._resolve(alert.id, at, note)
            engine.metrics.feedback.labels(verdict.value).inc()
        return {
            "label": label.to_json(),
            "alert": alert.to_json(),
            "resolved": resolves,
            "teaching": teaching,
            "replaced": None if before is None else before.verdict.value,
        }

    def _known(self, alert_id: str) -> tuple[Episode, bool]:
        """An alert's episode by id, open or resolved a while ago; True while it fires.

        Raises `CommandError` for a pending alert (nobody was told of it) or an id that is
        neither open nor among the resolved alerts kept (`alerts.state.KEEP_RESOLVED`).
        """
        engine = self.engine
        for ep in engine.episodes.open.values():
            if ep.alert.id == alert_id:
                if ep.alert.state is State.PENDING:
                    raise CommandError(
                        f"alert {alert_id} is pending, not firing: nobody was told of it"
                    )
                return ep, ep.alert.state is State.FIRING
        data = engine.saver.changes.resolved.get(alert_id) or engine.saver.state.resolved(alert_id)
        if data is None:
            kept = format_duration(KEEP_RESOLVED_SECONDS)
            raise CommandError(
                f"no alert with id {alert_id!r}: none is open, and none resolved "
                f"in the last {kept} has it"
            )
        return Episode.from_state(data), False

    def _resolve(self, alert_id: str, ts: int, note: str) -> Alert:
        """Resolve a firing alert at event time `ts`; its message ends with `note`.

        The resolution goes out as any other does, to the receivers that heard it fire; a
        save that fails is retried with the next batch's, as for an alert a rule resolves.
        """
        engine = self.engine
        key, ep = engine.episodes.firing(alert_id)
        alert = ep.alert
        alert.message = f"{alert.message}; {note}" if alert.message else note
        engine.episodes.resolve(key, ts)
        engine.save_and_tell()
        engine.retell(ts)
        return alert

    def _save_label(self, label: Label, alert: Alert) -> None:
        """Save a verdict on an alert now, with its record (`CommandError` when unsaved)."""
        changes = self.engine.saver.changes
        changes.labels.append(label)
        ledger = self.ledger
        record = ledger.record(
            alert_action(
                "feedback",
                alert,
                ledger.stamp(),
                label.by,
                label.comment,
                verdict=label.verdict.value,
            )
        )
        if not self.engine.save_and_tell():
            changes.labels.remove(label)
            ledger.withdraw(record)
            raise CommandError(UNSAVED)

    def _teach(self, label: Label, anomaly: bool) -> str:
        """Ask the model to learn the episode: ``requested``, ``already`` or ``none``.

        ``none``: nothing to teach (not an anomaly alert, a site-wide one, or models off).
        """
        if self.models is None or label.asset == SITE_WIDE or not anomaly:
            return "none"
        assert label.end is not None  # a normal verdict resolves a firing alert
        try:
            new = self.models.request(
                f"accept:{label.alert_id}",
                "accept",
                label.site,
                label.asset,
                by=label.by,
                comment=label.comment,
                now=label.at,
                start_ns=label.start,
                end_ns=label.end,
            )
        except StoreError as exc:
            raise CommandError(f"the models' feedback could not be saved: {exc}") from None
        return "requested" if new else "already"

    def _withdraw(self, label: Label) -> None:
        assert self.models is not None
        try:
            self.models.withdraw(f"accept:{label.alert_id}")
        except StoreError as exc:  # the label failed first: report that, log this
            raise CommandError(
                f"the label could not be saved, nor the teaching withdrawn: {exc}"
            ) from None

    def reset(self, site: str, asset: str, by: str, comment: str, key: str) -> dict[str, Any]:
        """Ask for a fresh model of an asset; return the reply's fields.

        `key` makes the request unique (the command's request id): the same request
        delivered again changes nothing. Raises `CommandError` when models are off, for an
        asset the pipeline never saw, or a failure to save.
        """
        if self.models is None:
            raise CommandError(_NO_MODELS)
        with self.engine.lock:
            seen = (site, asset) in self.engine.assets
        if not seen and not self.models.has_model(site, asset):
            raise CommandError(
                f"no asset {site}/{asset} is known to the pipeline (it has sent no reading)"
            )
        now = self.engine.wall()
        try:
            new = self.models.request(
                f"reset:{key}", "reset", site, asset, by=by, comment=comment, now=now
            )
        except StoreError as exc:
            raise CommandError(f"the model reset could not be saved: {exc}") from None
        self.models.poke()
        if new:
            self.engine.metrics.model_resets.inc()
        return {
            "reset": {"site": site, "asset": asset, "by": by, "comment": comment},
            "repeated": not new,
        }
