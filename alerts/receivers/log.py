"""The log receiver: one readable line per alert on the ``meshwatch.alerts`` logger.

The simplest receiver, and the one that always works: it writes through Python logging, so
alerts land wherever the process logs go (the console, journald, a log shipper). A firing
alert is logged at the configured level, a resolved one at INFO; each record also carries the
alert as data (``record.alert``, ``record.alert_id``, ``record.receiver``,
``record.delivery``) for structured handlers. It never raises: a log line cannot be retried
any better than it was written.

Settings
--------
Under ``alerts.receivers`` in the configuration::

    receivers:
      - name: console
        log: {level: WARNING}

``level`` is one of DEBUG, INFO, WARNING (the default) or ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from alerts.base import SITE_WIDE, Notification

#: The logger every alert line goes to.
LOGGER_NAME = "meshwatch.alerts"


class LogReceiverSettings(BaseModel):
    """Settings of a log receiver: the level firing alerts are logged at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"


def format_line(alert: Mapping[str, Any]) -> str:
    """One line a person can read, for an alert JSON of docs/design.md §3.

    Fields that are missing are shown as ``?`` rather than failing: the line is written
    whatever the alert looks like.

    Parameters
    ----------
    alert
        The alert JSON (``Alert.to_json``).

    Returns
    -------
    str
        ``STATE severity site/asset (kind) rule=... value=... id=...: message``.

    Examples
    --------
    >>> format_line({"id": "a1", "rule": "offline", "severity": "critical", "state": "firing",
    ...              "site": "plant-a", "asset": "cnc-1", "kind": "cnc-mill", "value": 300.0,
    ...              "message": "no data for 5 minutes"})
    'FIRING critical plant-a/cnc-1 (cnc-mill) rule=offline value=300 id=a1: no data for 5 minutes'
    >>> format_line({"state": "resolved", "site": "plant-b", "asset": "*", "rule": "offline"})
    'RESOLVED ? plant-b (whole site) rule=offline id=?: '
    >>> format_line({"state": "resolved", "site": "plant-a", "asset": "cnc-1", "rule": "hot",
    ...              "muted": "silenced"})
    'RESOLVED (while silenced) ? plant-a/cnc-1 rule=hot id=?: '
    """
    state = str(alert.get("state", "?")).upper()
    if alert.get("muted"):
        state += f" (while {alert['muted']})"
    where = _where(alert)
    kind = alert.get("kind")
    if kind:
        where += f" ({kind})"
    value = alert.get("value")
    shown = f" value={value:g}" if isinstance(value, int | float) else ""
    return (
        f"{state} {alert.get('severity', '?')} {where} rule={alert.get('rule', '?')}{shown}"
        f" id={alert.get('id', '?')}: {alert.get('message', '')}"
    )


def _where(alert: Mapping[str, Any]) -> str:
    """``site/asset``, or ``site (whole site)`` for a site-wide alert."""
    site, asset = alert.get("site", "?"), alert.get("asset", "?")
    return f"{site} (whole site)" if asset == SITE_WIDE else f"{site}/{asset}"


class LogReceiver:
    """Writes each alert of a notification as one line on the ``meshwatch.alerts`` logger.

    Parameters
    ----------
    name
        The receiver's name in the configuration.
    settings
        Its settings; the defaults when omitted.
    logger
        Where lines go; ``logging.getLogger("meshwatch.alerts")`` by default.
    """

    def __init__(
        self,
        name: str,
        settings: LogReceiverSettings | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else LogReceiverSettings()
        self._logger = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self._firing_level = logging.getLevelNamesMapping()[self.settings.level]

    def notify(self, notification: Notification) -> None:
        """Log one line per alert: resolved ones at INFO, the others at the configured level."""
        for alert in notification.alerts:
            level = logging.INFO if alert.get("state") == "resolved" else self._firing_level
            self._logger.log(
                level,
                "%s",
                format_line(alert),
                extra={
                    "alert": dict(alert),
                    "alert_id": alert.get("id"),
                    "receiver": self.name,
                    "delivery": notification.id,
                },
            )

    def close(self) -> None:
        """Nothing to release; present for the `Receiver` protocol."""

    def __repr__(self) -> str:
        return f"LogReceiver({self.name!r}, level={self.settings.level})"
