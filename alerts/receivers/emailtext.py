"""What an email notification says: its subject, its plain-text body and its headers.

Written to be read on a phone: the subject says what and where
(``[FIRING] critical: plant-a/cnc-1 offline``; for a group ``[FIRING:3] plant-a: 3 alerts``,
or ``[RESOLVED] ...`` once all are resolved), and the body lists each alert on short lines:
state and severity, rule, site/asset (kind), since when, when it resolved, its value and top
metric, the message, the alert id, and for a firing alert the command that acknowledges it
(``meshwatch ack <id>``). The ``Message-ID`` is derived from the delivery id, so a retried
notification carries the same one and mail clients show it once. The email receiver
(`alerts.receivers.email`) sends what `compose` builds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from alerts.base import SITE_WIDE, Notification

# Characters a Message-ID's left part can take verbatim (RFC 5322 dot-atom text, the safe part).
_MSGID_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Where no domain can be read off the sender, Message-IDs use this reserved one (RFC 2606).
_FALLBACK_DOMAIN = "meshwatch.invalid"
# The RFC 3339 times of the alert JSON, shown as "2026-11-24 12:00:00 UTC" in the body.
_UTC_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z")


def compose(
    notification: Notification, sender: str, to: Sequence[str], *, now: float | None = None
) -> EmailMessage:
    """The message a notification becomes, from `sender` to `to` (``now``: its Date)."""
    msg = EmailMessage()
    msg["Subject"] = subject(notification)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(now, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or _FALLBACK_DOMAIN
    if _MSGID_SAFE.fullmatch(notification.id):
        msg["Message-ID"] = f"<{notification.id}@{domain}>"
    else:
        msg["Message-ID"] = make_msgid("meshwatch", domain=domain)
    if notification.id:
        msg["X-Meshwatch-Delivery"] = notification.id
    msg.set_content(body(notification))
    return msg


def _where(alert: Mapping[str, Any]) -> str:
    """``site/asset``, or just ``site`` for a site-wide alert."""
    site, asset = alert.get("site", "?"), alert.get("asset", "?")
    return str(site) if asset == SITE_WIDE else f"{site}/{asset}"


def subject(notification: Notification) -> str:
    """The subject line of a notification.

    Examples
    --------
    >>> one = {"state": "firing", "severity": "critical", "site": "plant-a", "asset": "cnc-1",
    ...        "rule": "offline"}
    >>> subject(Notification("oncall", {}, [one]))
    '[FIRING] critical: plant-a/cnc-1 offline'
    >>> subject(Notification("oncall", {"site": "plant-a"}, [one, one, one]))
    '[FIRING:3] plant-a: 3 alerts'
    >>> done = {**one, "state": "resolved"}
    >>> subject(Notification("oncall", {"site": "plant-a"}, [one, done]))
    '[FIRING:1] plant-a: 2 alerts (1 resolved)'
    >>> subject(Notification("oncall", {"site": "plant-a"}, [done, done]))
    '[RESOLVED] plant-a: 2 alerts'
    """
    alerts = notification.alerts
    if len(alerts) == 1:
        alert = alerts[0]
        state = str(alert.get("state", "?")).upper()
        line = f"[{state}] {alert.get('severity', '?')}: {_where(alert)} {alert.get('rule', '?')}"
    else:
        firing = sum(1 for alert in alerts if alert.get("state") != "resolved")
        tag = f"FIRING:{firing}" if firing else "RESOLVED"
        resolved = f" ({len(alerts) - firing} resolved)" if 0 < firing < len(alerts) else ""
        line = f"[{tag}] {_group_name(notification.group, alerts)}: {len(alerts)} alerts{resolved}"
    # one line whatever the labels hold: a line break in a header would be refused
    return " ".join(line.split())


def _group_name(group: Mapping[str, str], alerts: Sequence[Mapping[str, Any]]) -> str:
    """What the alerts share: the group's values, else their common site, else "meshwatch"."""
    if group:
        return " ".join(str(value) for value in group.values())
    sites = {alert.get("site") for alert in alerts}
    return str(sites.pop()) if len(sites) == 1 else "meshwatch"


def body(notification: Notification) -> str:
    """The plain-text body: each alert on short lines, separated by a blank line.

    Examples
    --------
    >>> alert = {"id": "a1", "rule": "offline", "severity": "critical", "state": "firing",
    ...          "site": "plant-a", "asset": "cnc-1", "kind": "cnc-mill",
    ...          "started_at": "2026-11-24T12:00:00.000Z", "resolved_at": None,
    ...          "value": 300.0, "top_metric": None, "message": "no data for 5 minutes"}
    >>> print(body(Notification("oncall", {}, [alert], id="d1")), end="")
    FIRING critical: offline
    Asset: plant-a/cnc-1 (cnc-mill)
    Since: 2026-11-24 12:00:00 UTC
    Value: 300
    no data for 5 minutes
    Alert id: a1
    Acknowledge: meshwatch ack a1
    <BLANKLINE>
    --
    meshwatch, delivery d1
    """
    parts = [_describe(alert) for alert in notification.alerts]
    return "\n\n".join(parts) + f"\n\n--\nmeshwatch, delivery {notification.id}\n"


def _describe(alert: Mapping[str, Any]) -> str:
    """The lines of one alert."""
    state = str(alert.get("state", "?"))
    kind = alert.get("kind")
    lines = [
        f"{state.upper()} {alert.get('severity', '?')}: {alert.get('rule', '?')}",
        f"Asset: {_where(alert)}" + (f" ({kind})" if kind else ""),
        f"Since: {_time(alert.get('started_at'))}",
    ]
    if alert.get("resolved_at"):
        muted = f" (while {alert['muted']})" if alert.get("muted") else ""
        lines.append(f"Resolved: {_time(alert['resolved_at'])}{muted}")
    value = alert.get("value")
    if value is not None:
        lines.append(f"Value: {value:g}" if isinstance(value, int | float) else f"Value: {value}")
    if alert.get("top_metric"):
        lines.append(f"Top metric: {alert['top_metric']}")
    if alert.get("message"):
        lines.append(str(alert["message"]))
    lines.append(f"Alert id: {alert.get('id', '?')}")
    if state == "firing":
        lines.append(f"Acknowledge: meshwatch ack {alert.get('id', '?')}")
    return "\n".join(lines)


def _time(value: Any) -> str:
    """An RFC 3339 UTC time as ``2026-11-24 12:00:00 UTC``; anything else as it is."""
    if value is None:
        return "?"
    return _UTC_TIME.sub(r"\1 \2 UTC", str(value))
