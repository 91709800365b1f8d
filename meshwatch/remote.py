"""Talking to a running pipeline through the broker: health, silences, acks, shelves, feedback.

The CLI never reaches the pipeline directly. It reads the retained health map
(``<prefix>/health/{site}/{asset}``) and sends commands to
``<prefix>/cmd/{silence,ack,shelve,feedback,model,history}``, whose replies come on
``<prefix>/cmd/result`` carrying the command's ``request_id``. Each call uses a transient
connection: a clean session and a client id of its own (``meshwatch-cli-<hex>``), driven on
the caller's thread and closed before returning.

A command is published at QoS 1 to a pipeline whose session is persistent, so a command sent
while the pipeline is down waits at the broker and is carried out when it connects again; only
the reply is lost then.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from alerts.base import ALERTS_SUFFIX
from alerts.errors import RulesError
from alerts.matchers import Matcher
from common import mqtt as transport
from common.closing import Closing
from ingest.settings import MqttSettings
from meshwatch.errors import MeshwatchError

# The health map is complete once no retained message has come for this long (s): mosquitto
# sends a subscription's retained messages back to back, well within it on a local network.
_QUIET_SECONDS = 0.5
# Granularity (s) of the waits: how long one turn of paho's loop may block.
_TICK = 0.05
# Hex digits of the random part of the CLI's client id: 48 bits, no collision in practice.
_CLIENT_ID_HEX = 12


class RemoteError(MeshwatchError):
    """No broker, no reply in time, or a reply saying the pipeline refused the command."""


class MatcherError(MeshwatchError):
    """A silence matcher that is not ``label=value``, ``!=``, ``=~`` or ``!~`` on a known label."""


def check_matcher(text: str) -> str:
    """Check a silence matcher's syntax and return it stripped; the pipeline checks it again.

    The grammar is the pipeline's own (`alerts.matchers.Matcher`), so the CLI refuses exactly
    what the pipeline would.

    Raises
    ------
    MatcherError
        Naming the matcher and what is wrong with it.

    Examples
    --------
    >>> check_matcher(" asset=~cnc-.* ")
    'asset=~cnc-.*'
    >>> check_matcher("line=3")
    Traceback (most recent call last):
    ...
    meshwatch.remote.MatcherError: matcher 'line=3': unknown label 'line' ...
    """
    try:
        Matcher.parse(text)
    except RulesError as exc:
        raise MatcherError(str(exc)) from None
    return text.strip()


def fleet_health(settings: MqttSettings, *, wait: float) -> list[dict[str, Any]]:
    """The retained health message of every asset, as published by the running pipelines.

    Collects until no message has come for ~0.5 s, or for `wait` seconds in all. Empty
    retained messages (cleared topics) and payloads that are not JSON objects are skipped.

    Raises
    ------
    RemoteError
        When the broker cannot be reached or refuses the connection.
    """
    latest: dict[str, bytes] = {}
    last = [time.monotonic()]

    def keep(topic: str, payload: bytes) -> None:
        latest[topic] = payload
        last[0] = time.monotonic()

    deadline = time.monotonic() + wait
    with _Connection(settings, deadline, keep) as connection:
        connection.subscribe(f"{settings.prefix}/health/#")
        last[0] = time.monotonic()
        connection.run_until(lambda: time.monotonic() - last[0] >= _QUIET_SECONDS)
    health = []
    for payload in latest.values():
        try:
            doc = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            health.append(doc)
    return health


#: The commands `request` can send (`alerts.commands.handler.COMMANDS`).
Command = Literal["silence", "ack", "shelve", "feedback", "model", "history"]


def request(
    settings: MqttSettings,
    command: Command,
    body: dict[str, Any],
    *,
    timeout: float,
) -> dict[str, Any]:
    """Send a command to the running pipelines and return the reply that counts.

    The body gets a fresh ``request_id``; replies are the messages on ``<prefix>/cmd/result``
    with that id, subscribed to before the command is published. Every running instance
    answers (each holds its own part of the fleet): the first ``"ok": true`` reply wins (the
    instance that holds the alert, or any that applied a silence); a refusal counts once every
    live instance (an ``online`` retained ``<prefix>/status/<instance>-alerts``) has answered,
    or when the time is up.

    Raises
    ------
    RemoteError
        With the pipeline's ``error`` when the reply says ``"ok": false``; when the broker
        cannot be reached, refuses the command, or no reply comes within `timeout` seconds.
    """
    request_id = uuid.uuid4().hex
    result_topic = f"{settings.prefix}/cmd/result"
    command_topic = f"{settings.prefix}/cmd/{command}"
    status_prefix = f"{settings.prefix}/status/"
    replies: list[dict[str, Any]] = []
    live: dict[str, bool] = {}

    def match(topic: str, payload: bytes) -> None:
        try:
            reply = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            return
        if not isinstance(reply, dict):
            return
        if topic.startswith(status_prefix):
            if topic.endswith(ALERTS_SUFFIX):
                live[topic[len(status_prefix) :]] = reply.get("status") == "online"
        elif reply.get("request_id") == request_id:
            replies.append(reply)

    def answered() -> bool:
        if any(r.get("ok") is True for r in replies):
            return True
        return bool(replies) and len(replies) >= sum(live.values())

    deadline = time.monotonic() + timeout
    with _Connection(settings, deadline, match) as connection:
        connection.subscribe(result_topic, status_prefix + "+")
        acked = connection.publish(command_topic, orjson.dumps({**body, "request_id": request_id}))
        connection.run_until(lambda: answered() or (acked.done and acked.refused is not None))
    if acked.refused is not None:
        raise RemoteError(
            f"the broker refused the command on {command_topic}: {acked.refused} (check the ACL)"
        )
    if not replies:
        if not acked.done:
            raise RemoteError(
                f"the broker did not acknowledge the command on {command_topic} "
                f"within {timeout:g} s"
            )
        raise RemoteError(
            f"no reply from a running pipeline on {result_topic} within {timeout:g} s "
            "(the command stays queued for the pipeline's next connection)"
        )
    reply = next((r for r in replies if r.get("ok") is True), replies[0])
    if reply.get("ok") is True:
        return reply
    raise RemoteError(str(reply.get("error") or f"the pipeline refused the {command} command"))


class _Ack:
    """The broker's answer to one publish: whether it came, and a refusal's reason code."""

    def __init__(self, mid: int) -> None:
        self.mid = mid
        self.done = False
        self.refused: ReasonCode | None = None


class _Connection(Closing):
    """A transient, clean-session connection driven on the caller's thread until `deadline`."""

    def __init__(
        self,
        settings: MqttSettings,
        deadline: float,
        on_message: Callable[[str, bytes], None],
    ) -> None:
        self.settings = settings
        self.deadline = deadline
        self._on_message = on_message
        self._connack: ReasonCode | None = None
        self._subscribed: list[ReasonCode] | None = None
        self._acks: dict[int, _Ack] = {}
        client_id = f"meshwatch-cli-{uuid.uuid4().hex[:_CLIENT_ID_HEX]}"
        self._broker = settings.broker()
        self._session = transport.Session(client_id, settings.protocol, settings.keepalive)
        self.client = transport.new_client(self._broker, self._session)
        transport.bind(
            self.client, connected=self._connected, subscribed=self._suback, published=self._puback
        )
        self.client.on_message = self._message

    def __enter__(self) -> _Connection:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        """Connect and wait for the CONNACK, or raise `RemoteError` saying why not."""
        where = f"the MQTT broker at {self._broker.describe()}"
        self.client.connect_timeout = max(_TICK, self.deadline - time.monotonic())
        try:
            # MQTT 5 connects with a clean start and no session expiry: nothing stays behind.
            transport.connect(self.client, self._broker, self._session)
        except ssl.SSLError as exc:
            raise RemoteError(f"cannot connect to {where} over TLS: {exc}") from None
        except OSError as exc:
            raise RemoteError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        if not self.run_until(lambda: self._connack is not None):
            raise RemoteError(f"no answer from {where} within the time allowed")
        assert self._connack is not None
        if self._connack.is_failure:
            raise RemoteError(
                f"{where} refused the connection: {self._connack} "
                "(check mqtt.username, mqtt.password and the TLS settings)"
            )

    def close(self) -> None:
        """Disconnect (paho writes the DISCONNECT at once: no loop thread runs)."""
        self.client.disconnect()
        transport.release(self.client)

    def subscribe(self, *topics: str) -> None:
        """Subscribe to `topics` at QoS 1 and wait for the SUBACK."""
        wanted = [transport.Subscription(topic) for topic in topics]
        named = ", ".join(topics)
        result = transport.subscribe(self.client, wanted, self.settings.protocol)
        self._check(result, f"subscribe to {named}")
        if not self.run_until(lambda: self._subscribed is not None):
            raise RemoteError(f"the broker did not confirm the subscription to {named} in time")
        assert self._subscribed is not None
        refused = transport.refusal(self._subscribed)
        if refused is not None:
            raise RemoteError(f"the broker refused the subscription to {named}: {refused}")

    def publish(self, topic: str, payload: bytes) -> _Ack:
        """Publish at QoS 1; the returned `_Ack` fills in when the PUBACK arrives."""
        info = self.client.publish(topic, payload, qos=1)
        self._check(info.rc, f"publish to {topic}")
        ack = _Ack(info.mid)
        self._acks[info.mid] = ack
        return ack

    def run_until(self, done: Callable[[], bool]) -> bool:
        """Run paho's loop until `done()` or the deadline; return `done()`."""
        while not done():
            left = self.deadline - time.monotonic()
            if left <= 0:
                return False
            result = self.client.loop(min(_TICK, left))
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # A refused CONNACK ends the connection too, after on_connect saw it.
                if done():
                    return True
                self._check(result, "reading from the broker")
        return True

    def _check(self, result: MQTTErrorCode, what: str) -> None:
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            s = self.settings
            raise RemoteError(
                f"{what} failed: {mqtt.error_string(result)} (broker {s.host}:{s.port})"
            )

    # ---- paho callbacks (inside run_until) ----

    def _connected(self, flags: mqtt.ConnectFlags, reason_code: ReasonCode) -> None:
        self._connack = reason_code

    def _suback(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        self._subscribed = reason_codes

    def _puback(self, mid: int, reason_code: ReasonCode) -> None:
        ack = self._acks.get(mid)
        if ack is not None:
            ack.done = True
            ack.refused = reason_code if reason_code.is_failure else None

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            return
        self._on_message(topic, bytes(msg.payload))
