"""Errors raised by alerts.

Hierarchy::

    AlertsError
    ├── RulesError       a rules or routes file (or setting) that cannot work: names file and place
    ├── CommandError     a command (silence, ack, shelve, feedback, model reset) that is malformed
    │                    or names nothing known
    ├── DeliveryError    a receiver could not deliver a notification (carries `retryable`)
    └── SharedStateError the shared alert state (``alerts.state_url``, PostgreSQL) refused a
                         connection, a load or a save
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base of every error raised by the alerts package."""


class RulesError(AlertsError):
    """A rule, route, receiver or matcher definition that cannot work.

    The message names the file (when there is one), the place in it and the problem.
    """


class CommandError(AlertsError):
    """A command (silence, ack, shelve, feedback, model reset) that is rejected; nothing changed."""


class DeliveryError(AlertsError):
    """A receiver failed to deliver a notification.

    Parameters
    ----------
    message
        What went wrong, for the log.
    retryable
        True when trying again later may succeed (timeouts, 5xx, a broker that is away);
        False when it never will (a 4xx refusal, an address the server rejects).
    retry_after
        Seconds the far end asked us to wait (HTTP ``Retry-After``), when it said.
    """

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class SharedStateError(AlertsError):
    """The shared alert state of a cluster (PostgreSQL) refused a connection, load or save.

    A save that failed is kept and tried again with the next one; a load that failed leaves
    the batch's readings unjudged by the rules (the pipeline counts a processor error).
    """
