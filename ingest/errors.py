"""Errors raised by ingest.

Hierarchy::

    IngestError
    ├── RejectedMessage      a message that breaks the payload contract (carries `reason`)
    ├── TopicTemplateError   a topic template that cannot work
    ├── StoreError           a durable write that did not happen (carries `retryable`)
    │   └── SpoolFull        the on-disk spool reached its bound: back-pressure, not loss
    └── StoreReadError       a query of the store failed (a damaged file, a server down)
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message was rejected; the label of the rejection counter and dead letters."""

    OVERSIZE = "oversize"
    BAD_TOPIC = "bad_topic"
    BAD_ID = "bad_id"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    NO_METRICS = "no_metrics"
    TOO_MANY_METRICS = "too_many_metrics"
    BAD_METRIC_NAME = "bad_metric_name"
    BAD_METRIC_VALUE = "bad_metric_value"
    NON_FINITE = "non_finite"
    BAD_KIND = "bad_kind"
    BAD_SEQ = "bad_seq"
    #: The decoder itself failed (a bug): the message is kept so it can be replayed.
    INTERNAL_ERROR = "internal_error"


class IngestError(Exception):
    """Base of every error raised by the ingest package."""


class RejectedMessage(IngestError):
    """A message that breaks the payload contract; it becomes a dead letter.

    Parameters
    ----------
    reason
        The machine-readable reason (a `Reason`).
    detail
        What exactly is wrong, quoting the offending value.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TopicTemplateError(IngestError, ValueError):
    """A topic template without `{site}` and `{asset}` as whole levels, or with wildcards."""


class StoreError(IngestError):
    """A write that was not committed; `retryable` says whether trying again can help.

    `retry_after` is the least delay in seconds the server asked for (0 when it did not).
    """

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class SpoolFull(StoreError):
    """The spool holds `max_bytes` already; the pipeline stops acking until it drains."""


class StoreReadError(IngestError):
    """A query of the store failed: the file is locked or damaged, the server unreachable."""
