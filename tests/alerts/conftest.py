"""Fixtures of the alerts tests: real far ends for the receivers and alert JSON to send them.

- ``http_server``: a threaded HTTP server that records every request and answers with a
  chosen sequence of replies (200 by default), or hangs until the test ends.
- ``smtp_server``: aiosmtpd on a free port requiring STARTTLS and AUTH (LOGIN or PLAIN), with
  a throwaway CA's certificate (``ca_file``); ``smtps_server``: the same over implicit TLS.
- ``alert_subscriber``: a paho subscriber on the session's mosquitto, recording alert messages.
- ``mqtt_publisher`` / ``publisher_for``: the pipeline's real `MqttPublisher`, connected.
- ``closed_port``: a port nothing listens on (a far end that is down).
- ``plant``: a factory of alert engines on a real alerts.db fed a small fleet (`plantkit`).
"""

from __future__ import annotations

import itertools
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from plantkit import FLEET, AnyRule, Plant, route_of, rules_of
from support import wait_for

from alerts.assetstate import SharedAlertState
from alerts.base import Alert, Severity, State
from alerts.connection import MqttPublisher
from alerts.settings import AlertsSettings, load
from ingest.settings import MqttSettings
from meshwatch.localservers import (
    MissingBinaryError,
    Mosquitto,
    TlsFiles,
    free_port,
    make_test_certificates,
)

# The one account the test SMTP servers accept (`SmtpServer.username`, `.password`).
SMTP_USER = "meshwatch"
SMTP_PASSWORD = "correct horse battery staple"
# 2026-01-01T00:00:00Z in ns: a fixed past, so alert times read the same on every run
_T0 = 1_767_225_600_000_000_000
_MINUTE = 60_000_000_000


# --- alerts ---------------------------------------------------------------------------------


@pytest.fixture
def make_alert(unique_topic: str) -> Callable[..., dict[str, Any]]:
    """Return a factory of alert JSON (``Alert.to_json``) with a unique id and site per test."""
    counter = itertools.count(1)

    def make(**overrides: Any) -> dict[str, Any]:
        n = next(counter)
        values: dict[str, Any] = {
            "id": f"{unique_topic}-{n}-{uuid.uuid4().hex[:8]}",
            "rule": "offline",
            "severity": Severity.CRITICAL,
            "site": f"{unique_topic}-site",
            "asset": f"cnc-{n}",
            "kind": "cnc-mill",
            "state": State.FIRING,
            "started_at": _T0 + n * _MINUTE,
            "value": 300.0 + n,
            "message": f"no data from cnc-{n} for 5 minutes",
            "top_metric": "spindle_temp_c",
        }
        values.update(overrides)
        values["severity"], values["state"] = Severity(values["severity"]), State(values["state"])
        return Alert(**values).to_json()

    return make


# --- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the test HTTP server."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Request:
    """One request the test HTTP server received (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class HttpServer:
    """A real HTTP server on 127.0.0.1 that records requests and answers as scripted."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._hanging = False
        self._down: int | None = None
        self._accepted: list[Request] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/meshwatch"
        # a short poll interval: shutdown() waits for it (the default 0.5 s per test adds up)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Answer the next unscripted request with this; once the script is used up, 200."""
        with self._lock:
            self._replies.append(Reply(status, body, headers or {}))

    def hang(self) -> None:
        """Receive requests but never answer them (until the server stops)."""
        self._hanging = True

    def stop(self) -> None:
        """Release hanging requests, stop serving and join every thread."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def down(self, status: int = 503) -> None:
        """Answer every request with `status` until `up` (an endpoint that is down)."""
        self._down = status

    def up(self) -> None:
        """Answer as scripted again."""
        self._down = None

    @property
    def accepted(self) -> list[Request]:
        """The requests answered with a 2xx status, in arrival order."""
        with self._lock:
            return list(self._accepted)

    def _next(self, request: Request) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            if self._hanging:
                return None
            if self._down is not None:
                return Reply(self._down)
            reply = self._replies.pop(0) if self._replies else Reply()
            if 200 <= reply.status < 300:
                self._accepted.append(request)
            return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request(
                    "POST",
                    self.path,
                    {key.lower(): value for key, value in self.headers.items()},
                    self.rfile.read(length),
                )
                answer = server._next(request)
                if answer is None:
                    server._release.wait()
                    return
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        return Handler


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """Yield a recording HTTP server of this test's own."""
    server = HttpServer()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """Return a port of 127.0.0.1 that nothing listens on."""
    return free_port()


# --- SMTP -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """One message the test SMTP server accepted, with how the session was secured."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None
    mechanism: str | None


class SmtpServer:
    """aiosmtpd requiring TLS (STARTTLS, or implicit with ``implicit_tls``) and AUTH.

    Recipients listed in ``refuse`` are answered with their reply (``{"x@example": "550 ..."}``),
    and ``data_reply``, when set, answers DATA instead of accepting the message.
    """

    def __init__(self, tls: TlsFiles, *, implicit_tls: bool = False) -> None:
        self.tls = tls
        self.mails: list[Mail] = []
        self.mechanisms: list[str] = []
        self.refuse: dict[str, str] = {}
        self.data_reply: str | None = None
        self.username, self.password = SMTP_USER, SMTP_PASSWORD
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert, tls.key)
        self.port = free_port()
        self.host = "127.0.0.1"
        # aiosmtpd counts only STARTTLS as TLS: with implicit TLS, requiring TLS for AUTH would
        # hide AUTH, and requiring AUTH without it warns; so there AUTH is offered, not required
        tls_options: dict[str, Any] = (
            {"ssl_context": context, "auth_require_tls": False, "auth_required": False}
            if implicit_tls
            else {
                "tls_context": context,
                "require_starttls": True,
                "auth_require_tls": True,
                "auth_required": True,
            }
        )
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # the default looks up the FQDN: slow without DNS
            authenticator=self._authenticate,
            **tls_options,
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop the server and its event loop thread."""
        self._controller.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        ok = (
            isinstance(data, LoginPassword)
            and data.login == SMTP_USER.encode()
            and data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept a recipient unless it is listed in ``refuse``."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message (aiosmtpd calls this once DATA is complete)."""
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or b""
        self.mails.append(
            Mail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                login=(
                    session.auth_data.login.decode()
                    if isinstance(session.auth_data, LoginPassword)
                    else None
                ),
                mechanism=self.mechanisms[-1] if self.mechanisms else None,
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Return a throwaway CA and a certificate for localhost and 127.0.0.1."""
    try:
        return make_test_certificates(tmp_path_factory.mktemp("tls"))
    except MissingBinaryError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def smtp_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """Yield an SMTP server requiring STARTTLS and AUTH (LOGIN or PLAIN)."""
    server = SmtpServer(tls_files)
    yield server
    server.stop()


@pytest.fixture
def smtps_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """Yield an SMTP server speaking implicit TLS (SMTPS) and requiring AUTH."""
    server = SmtpServer(tls_files, implicit_tls=True)
    yield server
    server.stop()


@pytest.fixture
def ca_file(tls_files: TlsFiles) -> Path:
    """Return the CA certificate that signed the test servers' certificates."""
    return tls_files.ca


# --- MQTT -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message the subscriber got."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class AlertSubscriber:
    """A paho subscriber to ``<prefix>/alerts/#`` at QoS 1 that records what arrives."""

    def __init__(self, broker: Mosquitto, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[Received] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, 10, f"SUBACK for {prefix}/alerts/#")

    def _on_connect(self, client: mqtt.Client, *args: object) -> None:
        client.subscribe(f"{self.prefix}/alerts/#", qos=1)

    def _on_subscribe(self, *args: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def wait(self, count: int, timeout: float = 10) -> list[Received]:
        """Wait until `count` messages arrived; return them all."""
        wait_for(lambda: len(self.messages) >= count, timeout, f"{count} alert messages")
        return list(self.messages)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def alert_subscriber(mosquitto: Mosquitto, unique_topic: str) -> Iterator[AlertSubscriber]:
    """Yield a subscriber to ``<unique prefix>/alerts/#`` on the session's broker."""
    subscriber = AlertSubscriber(mosquitto, unique_topic)
    yield subscriber
    subscriber.close()


def _publisher_settings(host: str, port: int, prefix: str) -> MqttSettings:
    """MQTT settings of a test publisher: its own client id and prefix, no lasting session."""
    return MqttSettings(
        host=host, port=port, client_id=f"mw-{prefix}", prefix=prefix, session_expiry=0
    )


@pytest.fixture
def publisher_for(unique_topic: str) -> Iterator[Callable[..., MqttPublisher]]:
    """Return a factory of started `MqttPublisher`s (``connected`` waits for the CONNACK)."""
    made: list[MqttPublisher] = []

    def make(host: str, port: int, *, connected: bool = True) -> MqttPublisher:
        publisher = MqttPublisher(_publisher_settings(host, port, unique_topic))
        made.append(publisher)
        publisher.start()
        if connected:
            wait_for(lambda: publisher.connected, 10, f"publisher connected to {host}:{port}")
        return publisher

    yield make
    for publisher in made:
        publisher.close()


@pytest.fixture
def mqtt_publisher(
    mosquitto: Mosquitto, publisher_for: Callable[..., MqttPublisher]
) -> MqttPublisher:
    """Return a real `MqttPublisher` connected to the session's broker."""
    return publisher_for(mosquitto.host, mosquitto.port)


# --- the alert engine ------------------------------------------------------------------------


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Callable[..., Plant]]:
    """Return a factory of plants (default rules and route unless given); closes them all."""
    made: list[Plant] = []
    defaults = load(AlertsSettings())

    def make(
        rules: str | list[AnyRule] | None = None,
        route: str | None = None,
        assets: tuple[tuple[str, str], ...] = FLEET,
        name: str = "alerts.db",
        shared: Callable[[], SharedAlertState] | None = None,
        instance: str = "meshwatch",
    ) -> Plant:
        chosen = list(defaults.rules) if rules is None else rules
        made.append(
            Plant(
                tmp_path / name,
                rules_of(chosen) if isinstance(chosen, str) else chosen,
                defaults.route if route is None else route_of(route),
                assets,
                shared=shared,
                instance=instance,
            )
        )
        return made[-1]

    yield make
    for p in made:
        p.close()
