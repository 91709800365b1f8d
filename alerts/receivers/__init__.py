"""Receivers: where alert notifications go (log, webhook, email, MQTT).

Each receiver implements the `alerts.base.Receiver` protocol: ``name``, ``notify(notification)``
which delivers or raises `alerts.errors.DeliveryError` saying whether a retry may succeed, and
``close()``. Each lives in a module of its own with its settings model, the section that
configures it under ``alerts.receivers``::

    receivers:
      - name: console
        log: {level: WARNING}
      - name: maintenance
        webhook: {url: "https://cmms.example/hooks/meshwatch", secret: "..."}
      - name: oncall
        email: {host: smtp.example, sender: meshwatch@example, to: [oncall@example],
                username: meshwatch, password: "..."}
      - name: bus
        mqtt: {timeout: 10.0}

- ``log``: `LogReceiver`, one line per alert on the ``meshwatch.alerts`` logger; never fails.
- ``webhook``: `WebhookReceiver`, the alert JSON POSTed (an array for a group), HMAC-signed.
- ``email``: `EmailReceiver`, one plain-text message per notification over SMTP with TLS
  (what it says is composed in `alerts.receivers.emailtext`).
- ``mqtt``: `MqttReceiver`, each alert on ``<prefix>/alerts/{site}/{asset}`` at QoS 1.
"""

from __future__ import annotations

from alerts.receivers.email import EmailReceiver, EmailSettings
from alerts.receivers.log import LogReceiver, LogReceiverSettings
from alerts.receivers.mqtt import MqttReceiver, MqttReceiverSettings
from alerts.receivers.webhook import WebhookReceiver, WebhookSettings, sign

__all__ = [
    "EmailReceiver",
    "EmailSettings",
    "LogReceiver",
    "LogReceiverSettings",
    "MqttReceiver",
    "MqttReceiverSettings",
    "WebhookReceiver",
    "WebhookSettings",
    "sign",
]
