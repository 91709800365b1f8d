"""The shipped mosquitto config, ACL and scripts, loaded by the real mosquitto.

The broker runs ``deploy/mosquitto/mosquitto.conf`` with only its container paths and ports
rewritten (`_test_config`), the ``acl`` file unchanged, and a password file made by
``deploy/make-passwords.sh``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from support import not_installed, wait_for

from meshwatch.localservers import MissingBinaryError, find_binary, free_port

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TIMEOUT = 10.0
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code of a refused CONNECT or PUBLISH
USERS = {"meshwatch": "pipeline-pw", "ops": "ops-pw", "berlin": "berlin-pw", "lyon": "lyon-pw"}


def _test_config(workdir: Path, port: int, tls_port: int | None = None) -> str:
    """The shipped config with paths moved into ``workdir`` and listeners on local ports.

    With ``tls_port``, the commented TLS block is turned on as its comment says, with the
    certificates in ``workdir/certs``.
    """
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    replacements = {
        "acl_file /mosquitto/config/acl": f"acl_file {DEPLOY / 'mosquitto' / 'acl'}",
        "/mosquitto/config/passwd": f"{workdir}/passwd",
        "/mosquitto/data/": f"{workdir}/data/",
        "\nlistener 1883\n": f"\nlistener {port} 127.0.0.1\n",
        "log_dest stdout": "log_dest stderr",
    }
    if tls_port is not None:
        replacements |= {
            "#listener 8883": f"listener {tls_port} 127.0.0.1",
            "#cafile /mosquitto/config/certs/": f"cafile {workdir}/certs/",
            "#certfile /mosquitto/config/certs/": f"certfile {workdir}/certs/",
            "#keyfile /mosquitto/config/certs/": f"keyfile {workdir}/certs/",
            "#tls_version": "tls_version",
        }
    for old, new in replacements.items():
        assert old in conf, f"mosquitto.conf no longer contains {old!r}"
        conf = conf.replace(old, new)
    if os.geteuid() == 0:
        # as root, mosquitto would switch to the "mosquitto" user, who cannot read workdir
        conf += "user root\n"
    return conf


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@dataclass
class _Broker:
    """A mosquitto started on the shipped config (see `_running_broker`)."""

    workdir: Path
    port: int
    tls_port: int | None = None

    def log(self) -> str:
        return (self.workdir / "mosquitto.log").read_text(errors="replace")


def _running_broker(workdir: Path, *, tls: bool = False) -> Iterator[_Broker]:
    """Run mosquitto on the shipped config until the generator is closed."""
    try:
        binary = find_binary("mosquitto")
    except MissingBinaryError as exc:
        not_installed(str(exc))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir()
    pairs = [f"{user}={password}" for user, password in USERS.items()]
    env = {**os.environ, "PASSWD_FILE": str(workdir / "passwd")}
    subprocess.run([DEPLOY / "make-passwords.sh", *pairs], env=env, check=True, timeout=30)
    broker = _Broker(workdir, free_port(), free_port() if tls else None)
    if tls:
        subprocess.run([DEPLOY / "make-certs.sh", workdir / "certs"], check=True, timeout=30)
    conf = workdir / "mosquitto.conf"
    conf.write_text(_test_config(workdir, broker.port, broker.tls_port), encoding="utf-8")
    with (workdir / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-c", conf], stdout=log, stderr=log)
    try:
        ports = [broker.port] + ([broker.tls_port] if broker.tls_port else [])
        wait_for(
            lambda: process.poll() is None and all(_accepts(port) for port in ports),
            TIMEOUT,
            "mosquitto listening",
        )
        yield broker
    finally:
        process.terminate()
        process.wait(TIMEOUT)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Broker]:
    """A broker on the shipped config, shared by this module's tests."""
    yield from _running_broker(tmp_path_factory.mktemp("mosquitto"))


@dataclass
class _Client:
    """A connected MQTT 5 client that records CONNACK, PUBACKs, SUBACKs and messages."""

    client: mqtt.Client
    connack: list[ReasonCode] = field(default_factory=list)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes = b"{}") -> ReasonCode:
        """Publish at QoS 1; return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        wait_for(lambda: info.mid in self.pubacks, TIMEOUT, f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and check that the broker granted it."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        assert mid is not None
        wait_for(lambda: mid in self.subacks, TIMEOUT, f"SUBACK for {topic}")
        assert [code.value for code in self.subacks[mid]] == [1], self.subacks[mid]

    def messages(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.received)


def _connect(
    port: int, user: str | None = None, *, tls_ca: Path | None = None, wait: bool = True
) -> Iterator[_Client]:
    """Connect as ``user`` (password from `USERS`; anonymous when None), until closed."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    recorder = _Client(client)
    if user is not None:
        client.username_pw_set(user, USERS[user])
    if tls_ca is not None:
        client.tls_set(ca_certs=str(tls_ca))

    def on_connect(c: mqtt.Client, u: object, flags: object, code: ReasonCode, p: object) -> None:
        recorder.connack.append(code)

    def on_publish(c: mqtt.Client, u: object, mid: int, code: ReasonCode, p: object) -> None:
        recorder.pubacks[mid] = code

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, codes: list[ReasonCode], p: object
    ) -> None:
        recorder.subacks[mid] = codes

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        with recorder.lock:
            recorder.received.append((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("localhost", port)
    client.loop_start()
    try:
        wait_for(lambda: bool(recorder.connack), TIMEOUT, f"CONNACK for {user}")
        if wait:
            assert not recorder.connack[0].is_failure, recorder.connack[0]
        yield recorder
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def pipeline(broker: _Broker) -> Iterator[_Client]:
    """The pipeline user, subscribed to all telemetry and to meshwatch/cmd/#."""
    for client in _connect(broker.port, "meshwatch"):
        client.subscribe("plant/+/+/telemetry")
        client.subscribe("meshwatch/cmd/#")
        yield client


@pytest.fixture
def berlin(broker: _Broker) -> Iterator[_Client]:
    """The sensor user of site berlin."""
    yield from _connect(broker.port, "berlin")


@pytest.fixture
def ops(broker: _Broker) -> Iterator[_Client]:
    """The maintenance user."""
    yield from _connect(broker.port, "ops")


def _refused_then_marker(broker: _Broker, pipeline: _Client, user: str, topic: str) -> None:
    """As ``user``, publish to ``topic`` expecting 0x87, then a marker ``user`` may publish.

    Once the pipeline has the marker, the refused message would have arrived before it.
    mosquitto 2.0.11 closes the connection after a refused QoS 1 publish, so the marker goes
    out on a new connection.
    """
    for sender in _connect(broker.port, user):
        assert sender.publish(topic).value == NOT_AUTHORIZED
    marker = "meshwatch/cmd/ack" if user == "ops" else f"plant/{user}/marker/telemetry"
    for sender in _connect(broker.port, user):
        assert not sender.publish(marker, b"marker").is_failure
    wait_for(lambda: (marker, b"marker") in pipeline.messages(), TIMEOUT, "the marker")
    assert pipeline.messages() == [(marker, b"marker")]


def test_sensor_publishes_telemetry_of_its_own_site(pipeline: _Client, berlin: _Client) -> None:
    """A sensor user publishes telemetry under its own site and the pipeline receives it."""
    code = berlin.publish("plant/berlin/cnc-1/telemetry", b'{"temp": 1}')
    assert not code.is_failure, code
    expected = ("plant/berlin/cnc-1/telemetry", b'{"temp": 1}')
    wait_for(lambda: expected in pipeline.messages(), TIMEOUT, "the reading")


def test_sensor_is_refused_telemetry_of_another_site(broker: _Broker, pipeline: _Client) -> None:
    """A sensor publishing under another site gets 0x87 and nothing is delivered."""
    _refused_then_marker(broker, pipeline, "berlin", "plant/lyon/cnc-1/telemetry")


def test_anonymous_client_is_refused(broker: _Broker) -> None:
    """A client without user name is refused at CONNECT with 0x87 "not authorized"."""
    for client in _connect(broker.port, None, wait=False):
        assert client.connack[0].value == NOT_AUTHORIZED


def test_ops_sends_a_command_the_pipeline_receives(pipeline: _Client, ops: _Client) -> None:
    """The maintenance user publishes on meshwatch/cmd/ack and the pipeline receives it."""
    assert not ops.publish("meshwatch/cmd/ack", b'{"id": "a1"}').is_failure
    expected = ("meshwatch/cmd/ack", b'{"id": "a1"}')
    wait_for(lambda: expected in pipeline.messages(), TIMEOUT, "the command")


@pytest.mark.parametrize(
    "topic",
    ["plant/berlin/cnc-1/telemetry", "plant/ops/cnc-1/telemetry"],
    ids=["a-site", "its-own-name"],
)
def test_ops_cannot_publish_telemetry(broker: _Broker, pipeline: _Client, topic: str) -> None:
    """The maintenance user gets 0x87 for telemetry and nothing is delivered."""
    _refused_then_marker(broker, pipeline, "ops", topic)


def test_tls_listener_serves_the_certificates_of_make_certs(tmp_path: Path) -> None:
    """With make-certs.sh's files and the TLS block on, a client verifying the CA connects."""
    for broker in _running_broker(tmp_path / "mosquitto", tls=True):
        assert broker.tls_port is not None
        for client in _connect(broker.tls_port, "ops", tls_ca=tmp_path / "mosquitto/certs/ca.crt"):
            assert not client.publish("meshwatch/cmd/ack").is_failure
