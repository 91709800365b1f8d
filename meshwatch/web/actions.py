"""What a maintainer does from the console, sent as the CLI sends it (`meshwatch.remote`).

Each action is checked here first (a duration, a verdict), then sent to the running pipeline
with ``by`` set to the logged-in user; the pipeline's refusal comes back as `ActionError`
with its own message. Every action that succeeded is kept in `Actions.log`, newest first, so
the pages can say who acted and when.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.labels import Verdict
from common.durations import DurationError, parse_duration
from common.timestamps import format_rfc3339
from ingest.settings import MqttSettings
from meshwatch import remote
from meshwatch.errors import MeshwatchError

# Seconds to wait for the pipeline's reply: the CLI's default (`--timeout`).
_TIMEOUT = 5.0
# Actions kept for the pages: a shift's worth on a busy fleet.
_KEPT = 500
# Longest comment or reason accepted: the pipeline refuses commands over 64 KiB.
MAX_TEXT = 2000

Request = Callable[[MqttSettings, remote.Command, dict[str, Any]], dict[str, Any]]


class ActionError(MeshwatchError):
    """An action that was refused: bad input, or the pipeline's (or the broker's) refusal."""


@dataclass(frozen=True, slots=True)
class Acted:
    """One action that was carried out: what, on which alert or silence, by whom, when."""

    what: str
    target: str
    by: str
    at: str
    comment: str


def _send(settings: MqttSettings, command: remote.Command, body: dict[str, Any]) -> dict[str, Any]:
    return remote.request(settings, command, body, timeout=_TIMEOUT)


class Actions:
    """Sends commands for the logged-in user and remembers what was done.

    Parameters
    ----------
    settings
        The broker and topic prefix of the pipeline.
    send
        Sends one command and returns the reply (`meshwatch.remote.request` by default; tests
        of pure logic give a fake).
    """

    def __init__(self, settings: MqttSettings, send: Request = _send) -> None:
        self.settings = settings
        self._send = send
        self._lock = threading.Lock()
        self.log: deque[Acted] = deque(maxlen=_KEPT)

    def ack(self, alert_id: str, by: str, comment: str) -> str:
        """Acknowledge an alert; the line to show."""
        _text(comment, "comment")
        self._ask("ack", {"id": alert_id, "by": by, "comment": comment})
        self._keep("acknowledged", alert_id, by, comment)
        return f"alert {alert_id} acknowledged by {by}"

    def feedback(self, alert_id: str, verdict: str, by: str, comment: str) -> str:
        """Give a verdict on an alert (normal: a false alarm; fault: confirmed)."""
        if verdict not in tuple(Verdict):
            raise ActionError(f"verdict {verdict!r} is not normal or fault")
        _text(comment, "comment")
        body = {"id": alert_id, "verdict": verdict, "by": by, "comment": comment}
        self._ask("feedback", body)
        what = "marked a false alarm" if verdict == Verdict.NORMAL else "confirmed as a fault"
        self._keep(what, alert_id, by, comment)
        return f"alert {alert_id} {what} by {by}"

    def silence(self, site: str, asset: str | None, duration: str, reason: str, by: str) -> str:
        """Silence an asset (or, with no asset, a whole site) for `duration`."""
        try:
            parse_duration(duration, positive=True)
        except DurationError as exc:
            raise ActionError(str(exc)) from None
        if not reason.strip():
            raise ActionError("give a reason for the silence (it is shown with it)")
        _text(reason, "reason")
        try:
            matchers = [remote.check_matcher(f"site={site}")]
            if asset is not None:
                matchers.append(remote.check_matcher(f"asset={asset}"))
        except remote.MatcherError as exc:
            raise ActionError(str(exc)) from None
        body = {
            "action": "add",
            "matchers": matchers,
            "duration": duration,
            "created_by": by,
            "comment": reason,
        }
        added = self._ask("silence", body).get("silence", {})
        where = site if asset is None else f"{site}/{asset}"
        self._keep(f"silenced {where} for {duration}", str(added.get("id", "")), by, reason)
        return f"{where} silenced for {duration} (silence {added.get('id')})"

    def silences(self) -> list[dict[str, Any]]:
        """The pipeline's active and pending silences."""
        listed = self._ask("silence", {"action": "list", "all": False}).get("silences")
        return [s for s in listed or [] if isinstance(s, dict)]

    def expire(self, silence_id: str, by: str) -> str:
        """End a silence now."""
        self._ask("silence", {"action": "expire", "id": silence_id})
        self._keep("expired", silence_id, by, "")
        return f"silence {silence_id} expired"

    def acted_on(self, target: str) -> list[Acted]:
        """What was done to an alert or silence from this console, newest first."""
        with self._lock:
            return [a for a in self.log if a.target == target]

    def _ask(self, command: remote.Command, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._send(self.settings, command, body)
        except remote.RemoteError as exc:
            raise ActionError(str(exc)) from None

    def _keep(self, what: str, target: str, by: str, comment: str) -> None:
        with self._lock:
            self.log.appendleft(Acted(what, target, by, format_rfc3339(time.time_ns()), comment))


def _text(value: str, name: str) -> None:
    if len(value) > MAX_TEXT:
        raise ActionError(f"the {name} is {len(value)} characters long: at most {MAX_TEXT}")
