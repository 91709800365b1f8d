"""The subscriber's paho client, built from settings, and the pipeline's status payloads.

Kept apart from the subscriber's loop so that the loop reads as the delivery logic alone;
the transport itself (credentials, TLS, session, fast acks) is `common.mqtt`'s.
"""

from __future__ import annotations

import logging
import time

import orjson
import paho.mqtt.client as mqtt

from common.mqtt import Session, new_client
from common.timestamps import format_rfc3339
from ingest.settings import MqttSettings


def session_of(settings: MqttSettings) -> Session:
    """The subscriber's persistent session: its client id, expiry and Receive Maximum."""
    return Session(
        settings.client_id,
        settings.protocol,
        settings.keepalive,
        persistent=True,
        session_expiry=settings.session_expiry,
        receive_maximum=settings.receive_maximum,
    )


def build_client(settings: MqttSettings, status_topic: str) -> mqtt.Client:
    """A client with manual acks, no reconnect of its own and an "offline" last will.

    The subscriber reconnects in its own loop, and acks only after the durable commit.
    """
    client = new_client(settings.broker(), session_of(settings), manual_ack=True, reconnect=False)
    will = status_payload(settings.client_id, "offline")
    client.will_set(status_topic, will, qos=1, retain=True)
    # paho's own errors (a TLS alert from the broker, a failed socket read) reach the log;
    # its per-packet debug lines stay off unless this logger is set to DEBUG.
    client.enable_logger(logging.getLogger("ingest.paho"))
    return client


def status_payload(client_id: str, status: str) -> bytes:
    """The retained status message of a pipeline instance.

    Examples
    --------
    >>> sorted(orjson.loads(status_payload("hub-1", "online")).items())[:2]
    [('client_id', 'hub-1'), ('since', ...)]
    """
    return orjson.dumps(
        {"client_id": client_id, "status": status, "since": format_rfc3339(time.time_ns())}
    )
