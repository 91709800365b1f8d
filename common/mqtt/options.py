"""Where a client connects (`Broker`, `Tls`) and how its session behaves (`Session`).

Plain frozen values, with no paho in them: the pipeline's settings (``mqtt:`` in YAML) and
the simulators' arguments both turn into these, and `common.mqtt.client` builds from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: The MQTT versions meshwatch speaks: 5, and 3.1.1 for brokers that know only that (amqtt).
Protocol = Literal["5", "3.1.1"]
# Session Expiry Interval and Receive Maximum bounds (MQTT 5 §3.1.2.11): four and two bytes.
_MAX_EXPIRY = 4_294_967_295
_MAX_RECEIVE = 65_535


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS for the broker connection: the CA to verify it, and a client certificate if needed.

    With no files the system's CAs verify the broker and no client certificate is sent.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Broker:
    """Where and how to connect: host, port, optional credentials and TLS.

    Examples
    --------
    >>> Broker.of("mqtt.local", 8883, "hub", "secret", tls=True)
    Broker(host='mqtt.local', port=8883, username='hub', tls=Tls(ca_file=None, cert_file=None, key_file=None))
    >>> Broker().describe()
    'localhost:1883'
    """  # noqa: E501 - a doctest's output is one line

    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: Tls | None = None

    @classmethod
    def of(
        cls,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: Tls | bool = False,
    ) -> Broker:
        """The options as the recorder and replayer take them (``tls=True``: system CAs)."""
        return cls(host, port, username, password, Tls() if tls is True else tls or None)

    def describe(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Session:
    """The client's identity and session: client id, protocol, keepalive, persistence.

    A persistent session outlives the connection: on 3.1.1 ``clean_session=False``; on MQTT 5
    ``clean_start=False`` with `session_expiry` seconds. A transient one starts clean every
    time and ends with the connection.

    Examples
    --------
    >>> Session("hub-1", persistent=True, session_expiry=86_400).persistent
    True
    >>> Session("", persistent=True)
    Traceback (most recent call last):
    ...
    ValueError: a persistent session requires a client_id: set one
    """

    client_id: str = ""
    protocol: Protocol = "5"
    # paho's default keepalive (s).
    keepalive: int = 60
    persistent: bool = False
    session_expiry: int = 0
    #: MQTT 5 Receive Maximum, sent only when set (mosquitto caps it at max_inflight_messages).
    receive_maximum: int | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"protocol {self.protocol!r} is not '5' or '3.1.1'")
        if self.keepalive < 1:
            raise ValueError(f"keepalive {self.keepalive} must be at least 1 second")
        if self.persistent and not self.client_id:
            raise ValueError("a persistent session requires a client_id: set one")
        if not 0 <= self.session_expiry <= _MAX_EXPIRY:
            raise ValueError(f"session_expiry {self.session_expiry} is not in 0..{_MAX_EXPIRY}")
        if self.receive_maximum is not None and not 1 <= self.receive_maximum <= _MAX_RECEIVE:
            raise ValueError(f"receive_maximum {self.receive_maximum} is not in 1..{_MAX_RECEIVE}")
