"""Commands from maintenance tools: silences, acks, shelves, feedback and model resets.

They arrive on ``meshwatch/cmd/<command>``.

Each command is a JSON object; the reply goes to ``meshwatch/cmd/result`` with the
command's ``request_id``. A malformed command, or one naming an alert or silence that is not
there, changes nothing and is answered with ``"ok": false`` and the problem::

    {"request_id": "r1", "action": "add", "matchers": ["site=plant-a", "asset=cnc-1"],
     "duration": "2h", "created_by": "ana", "comment": "spindle bearing swap"}   (silence)
    {"request_id": "r1b", "action": "add", "matchers": ["kind=compressor"],
     "every": "mon 06:00-08:00 Europe/Berlin", "created_by": "ana",
     "comment": "weekly service"}                                   (silence, repeating)
    {"request_id": "r2", "action": "list", "all": false}                          (silence)
    {"request_id": "r3", "action": "expire", "id": "3f2a9c0d1e4b5a67"}            (silence)
    {"request_id": "r4", "id": "<alert id>", "by": "ben", "comment": "on it"}     (ack)
    {"request_id": "r5", "action": "shelve", "id": "<alert id>", "duration": "2h",
     "by": "ana", "comment": "sensor replaced tomorrow"}                          (shelve)
    {"request_id": "r6", "action": "unshelve", "id": "<alert id>", "by": "ana"}   (shelve)
    {"request_id": "r7", "action": "list"}                                        (shelve)
    {"request_id": "r8", "id": "<alert id>", "verdict": "normal", "by": "ana",
     "comment": "new coolant pump, runs warmer"}                                   (feedback)
    {"request_id": "r9", "action": "reset", "site": "lyon", "asset": "cnc-1",
     "by": "ana", "comment": "spindle bearing replaced"}                           (model)
    {"request_id": "r10", "matchers": ["site=lyon"], "since": "7d", "limit": 100,
     "summary": false}                                                            (history)
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.commands.desk import AlertDesk
from alerts.commands.feedback import FeedbackDesk
from alerts.commands.history import HistoryDesk
from alerts.errors import CommandError, RulesError
from alerts.history.query import DEFAULT_LIMIT, MAX_LIMIT
from alerts.labels import Verdict
from alerts.matchers import Matcher, parse_all
from alerts.shelves import check_duration
from alerts.silences import UNTIL_EXPIRED, Silence
from alerts.timeintervals import parse_every
from common.durations import Duration
from ingest.topic import ID_RULE

#: The commands the pipeline answers, by topic suffix under ``{prefix}/cmd/``.
COMMANDS = ("silence", "ack", "shelve", "feedback", "model", "history")
#: A command payload is small; anything larger is not a command.
_MAX_PAYLOAD = 64 * 1024
_ID = re.compile(ID_RULE)
#: Longest ``by`` and ``comment`` of a verdict or reset: a name, and a few sentences (the
#: work order itself belongs in the maintenance system; its number fits here).
_BY_MAX, _COMMENT_MAX = 128, 1000


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(None, max_length=128)


class SilenceAdd(_Command):
    """Add a silence: matchers, a window (an end or a duration), who and why.

    With ``every`` it repeats (`alerts.timeintervals.parse_every`): it mutes only inside that
    recurring window, until its end, or until expired when it has none.
    """

    action: Literal["add"]
    matchers: list[str] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: Duration | None = Field(None, gt=0)
    every: str | None = Field(None, max_length=200)
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)

    @field_validator("every")
    @classmethod
    def _every_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_every(value)  # its ValueError names the word that is wrong
        return value

    @model_validator(mode="after")
    def _one_end(self) -> SilenceAdd:
        if self.ends_at is not None and self.duration is not None:
            raise ValueError("give either ends_at or duration, not both")
        if self.every is None and self.ends_at is None and self.duration is None:
            raise ValueError("give either ends_at or duration (or every, for a repeating one)")
        for t in (self.starts_at, self.ends_at):
            if t is not None and t.tzinfo is None:
                raise ValueError("times need a time zone, e.g. 2026-11-25T14:00:00Z")
        return self


class SilenceList(_Command):
    """List the silences (``all``: expired ones too)."""

    action: Literal["list"]
    all: bool = False


class SilenceExpire(_Command):
    """End a silence now."""

    action: Literal["expire"]
    id: str = Field(min_length=1)


class Ack(_Command):
    """Acknowledge a firing alert: its repeats stop."""

    id: str = Field(min_length=1)
    by: str = Field(min_length=1)
    comment: str = ""


class Shelve(_Command):
    """Shelve a firing alert for a while (at most a day): its notifications wait."""

    action: Literal["shelve"]
    id: str = Field(min_length=1)
    duration: Duration
    by: str = Field(min_length=1)
    comment: str = ""

    @model_validator(mode="after")
    def _limited(self) -> Shelve:
        try:
            check_duration(self.duration)
        except CommandError as exc:  # a ValueError here, so the reply names the field
            raise ValueError(str(exc)) from None
        return self


class Unshelve(_Command):
    """End an alert's shelf now."""

    action: Literal["unshelve"]
    id: str = Field(min_length=1)
    by: str = ""


class ShelfList(_Command):
    """List the shelved alerts."""

    action: Literal["list"]


class Feedback(_Command):
    """A verdict on an alert: ``normal`` (a false alarm: teach the model) or ``fault``."""

    id: str = Field(min_length=1, max_length=128)
    verdict: Verdict
    by: str = Field(min_length=1, max_length=_BY_MAX)
    comment: str = Field("", max_length=_COMMENT_MAX)


class ModelReset(_Command):
    """Discard an asset's model: it learns again from scratch (after maintenance)."""

    action: Literal["reset"]
    site: str
    asset: str
    by: str = Field(min_length=1, max_length=_BY_MAX)
    comment: str = Field("", max_length=_COMMENT_MAX)

    @field_validator("site", "asset")
    @classmethod
    def _an_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"{value!r} is not an id (it must match {ID_RULE})")
        return value

    @field_validator("by")
    @classmethod
    def _somebody(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a model reset needs by (who asks for it)")
        return value.strip()


class History(_Command):
    """Alert history: the episodes of the last `since`, selected by matchers (read-only)."""

    matchers: list[str] = Field(default_factory=list, max_length=32)
    since: Duration = Field(7 * 86_400.0, gt=0)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    summary: bool = False

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        try:
            parse_all(value)
        except RulesError as exc:
            raise ValueError(str(exc)) from None
        return value

    def parsed(self) -> tuple[Matcher, ...]:
        """The matchers, parsed (checked already)."""
        return parse_all(self.matchers)


_SILENCE = TypeAdapter(
    Annotated[SilenceAdd | SilenceList | SilenceExpire, Field(discriminator="action")]
)
_SHELVE = TypeAdapter(Annotated[Shelve | Unshelve | ShelfList, Field(discriminator="action")])


def handle(
    desk: AlertDesk,
    command: str,
    payload: bytes,
    feedback: FeedbackDesk | None = None,
    history: HistoryDesk | None = None,
) -> dict[str, Any]:
    """Apply one command at the desk; return the reply (never raises for bad input).

    `feedback` takes feedback and model resets (without one, verdicts teach no model and
    resets are refused); `history` answers from the store (without one, it is refused).
    """
    request_id = _request_id(payload)
    try:
        result = _apply(
            desk,
            feedback or FeedbackDesk(desk.engine, None, desk.ledger),
            history or HistoryDesk(desk.engine, None),
            command,
            payload,
        )
    except CommandError as exc:
        return {"request_id": request_id, "command": command, "ok": False, "error": str(exc)}
    return {"request_id": request_id, "command": command, "ok": True, **result}


def _key(request_id: str | None, payload: bytes) -> str:
    """16 hex digits naming what a command makes, the same wherever and however often applied.

    From its ``request_id``, else from the payload itself.
    """
    source = request_id.encode() if request_id else payload
    return hashlib.blake2b(source, digest_size=8).hexdigest()


def _apply(
    desk: AlertDesk, feedback: FeedbackDesk, history: HistoryDesk, command: str, payload: bytes
) -> dict[str, Any]:
    engine = desk.engine
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r} (commands are {', '.join(COMMANDS)})")
    if len(payload) > _MAX_PAYLOAD:
        raise CommandError(f"command too large ({len(payload)} bytes, at most {_MAX_PAYLOAD})")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("a command is a JSON object")
    now = engine.wall()
    try:
        if command == "ack":
            ack = Ack.model_validate(data)
            alert = desk.ack(ack.id, ack.by, ack.comment)
            return {"alert": alert.to_json()}
        if command == "shelve":
            return _shelve(desk, _SHELVE.validate_python(data))
        if command == "feedback":
            verdict = Feedback.model_validate(data)
            return feedback.give(verdict.id, verdict.verdict, verdict.by, verdict.comment)
        if command == "history":
            asked = History.model_validate(data)
            return history.answer(asked.parsed(), asked.since, asked.limit, asked.summary)
        if command == "model":
            reset = ModelReset.model_validate(data)
            # The same request delivered again is the same reset (not a second one).
            key = reset.request_id or _key(None, payload)  # a reset is keyed as it was
            return feedback.reset(reset.site, reset.asset, reset.by, reset.comment, key)
        parsed = _SILENCE.validate_python(data)
    except ValidationError as exc:
        raise CommandError(_describe(exc)) from None
    if isinstance(parsed, SilenceList):
        silences = engine.silences.all(include_expired=parsed.all)
        return {"silences": [s.to_json(now) for s in silences]}
    if isinstance(parsed, SilenceExpire):
        ended = desk.expire_silence(parsed.id)
        return {"silence": ended.to_json(max(now, ended.ends_at))}
    starts = parsed.starts_at.timestamp() if parsed.starts_at is not None else now
    if parsed.ends_at is not None:
        ends = parsed.ends_at.timestamp()
    elif parsed.duration is not None:
        ends = starts + parsed.duration
    else:
        ends = UNTIL_EXPIRED
    if ends <= now:
        raise CommandError("the silence would already be over (its end is in the past)")
    every = None if parsed.every is None else parse_every(parsed.every)
    # Every instance takes the same command: the same id, so that one expire ends it on all.
    silence_id = _key(parsed.request_id, payload)
    silence = Silence.create(
        parsed.matchers, starts, ends, parsed.created_by, parsed.comment, every, silence_id
    )
    return {"silence": desk.add_silence(silence).to_json(now)}


def _shelve(desk: AlertDesk, parsed: Shelve | Unshelve | ShelfList) -> dict[str, Any]:
    engine = desk.engine
    if isinstance(parsed, ShelfList):
        with engine.lock:  # the shelves change on the pipeline's thread
            alerts = {a.id: a for a in engine.open_alerts()}
            shelves = list(engine.shelves)
        return {
            "shelves": [
                {**shelf.to_json(), "alert": alerts[shelf.alert_id].to_json()}
                for shelf in shelves
                if shelf.alert_id in alerts
            ]
        }
    if isinstance(parsed, Unshelve):
        alert, shelf = desk.unshelve(parsed.id, parsed.by)
    else:
        alert, shelf = desk.shelve(parsed.id, parsed.by, parsed.duration, parsed.comment)
    return {"alert": alert.to_json(), "shelf": shelf.to_json()}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{where}: {message}" if where else message


def _request_id(payload: bytes) -> str | None:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("request_id"), str):
        return str(data["request_id"])[:128]
    return None
