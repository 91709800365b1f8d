"""Integration tests of the local servers the other tests, the demo and benchmarks rely on."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support import not_installed

from meshwatch.localservers import (
    MissingBinaryError,
    Mosquitto,
    RabbitCluster,
    VictoriaMetrics,
    make_client_certificate,
    make_password_file,
    make_test_certificates,
)

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


class Recorder:
    """paho client callbacks that record CONNACKs, SUBACKs and message payloads."""

    def __init__(self, client: mqtt.Client) -> None:
        self.connacks: list[tuple[bool, mqtt.ReasonCode]] = []
        self.payloads: list[bytes] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.lock = threading.Lock()
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_message = self.on_message

    def on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.append((flags.session_present, reason_code))
        self.connected.set()

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed.set()

    def on_message(self, client, userdata, message):
        with self.lock:
            self.payloads.append(message.payload)

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.payloads) >= count:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.payloads)


def new_client(client_id: str = "") -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)


def session_properties(expiry_s: int = 3600) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_s
    return properties


@contextmanager
def connected(
    client: mqtt.Client, host: str, port: int, *, clean_start: bool = True, expiry_s: int = 0
) -> Iterator[Recorder]:
    """Connect ``client`` with its network loop in a thread; disconnect on exit."""
    recorder = Recorder(client)
    properties = session_properties(expiry_s) if expiry_s else None
    client.connect(host, port, clean_start=clean_start, properties=properties)
    client.loop_start()
    try:
        assert recorder.connected.wait(TIMEOUT), "no CONNACK"
        yield recorder
    finally:
        client.disconnect()
        client.loop_stop()


def subscribe(client: mqtt.Client, recorder: Recorder, topic: str) -> None:
    recorder.subscribed.clear()
    client.subscribe(topic, qos=1)
    assert recorder.subscribed.wait(TIMEOUT), "no SUBACK"


def publish_all(broker: Mosquitto, topic: str, payloads: list[bytes]) -> None:
    """Publish at QoS 1 and return once the broker has acknowledged every message."""
    publisher = new_client()
    with connected(publisher, broker.host, broker.port):
        infos = [publisher.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()


def write_line(vm: VictoriaMetrics, line: str) -> None:
    with InfluxDBClient(url=vm.url, token="x", org="o") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=line)


def test_qos1_message_reaches_subscriber(mosquitto: Mosquitto, unique_topic: str) -> None:
    """A QoS 1 message published with paho 2.x reaches a subscriber of the topic."""
    topic = f"{unique_topic}/telemetry"
    subscriber = new_client()
    with connected(subscriber, mosquitto.host, mosquitto.port) as recorder:
        subscribe(subscriber, recorder, topic)
        publish_all(mosquitto, topic, [b"hello"])
        assert recorder.wait_for(1) == [b"hello"]


def test_offline_session_keeps_3000_messages_across_restart(
    fresh_mosquitto: Mosquitto, unique_topic: str
) -> None:
    """An offline persistent session keeps 3,000 queued QoS 1 messages across a broker restart."""
    topic = f"{unique_topic}/telemetry"
    client_id = f"{unique_topic}-sub"
    expected = [str(i).encode() for i in range(3000)]
    first = new_client(client_id)
    host, port = fresh_mosquitto.host, fresh_mosquitto.port
    # clean_start=False from the first CONNECT: mosquitto 2.0 persists only sessions whose last
    # CONNECT had it, so paho's default (clean start on the first connect) loses the session
    with connected(first, host, port, clean_start=False, expiry_s=3600) as rec:
        subscribe(first, rec, topic)
    publish_all(fresh_mosquitto, topic, expected)

    fresh_mosquitto.restart()

    again = new_client(client_id)  # no new subscription: the session must bring it back
    with connected(again, host, port, clean_start=False, expiry_s=3600) as recorder:
        received = recorder.wait_for(len(expected))
    assert recorder.connacks[0][0], "session not present after restart"
    assert sorted(received, key=int) == expected


@pytest.mark.usefixtures("mosquitto")  # skips (or fails in CI) when mosquitto is missing
def test_tls_listener_accepts_client_trusting_test_ca(tmp_path: Path) -> None:
    """A TLS broker with make_test_certificates' files accepts a client verifying localhost."""
    tls = make_test_certificates(tmp_path / "certs")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        client = new_client()
        client.tls_set_context(ssl.create_default_context(cafile=str(tls.ca)))
        with connected(client, "localhost", broker.port) as recorder:
            assert recorder.connacks[0][1] == 0


@pytest.mark.usefixtures("mosquitto")
def test_require_certificate_admits_only_clients_with_a_certificate(tmp_path: Path) -> None:
    """With require_certificate, a make_client_certificate client connects; one without fails."""
    tls = make_test_certificates(tmp_path / "certs")
    cert, key = make_client_certificate(tmp_path / "clients", tls, "client")
    with_certificate = ssl.create_default_context(cafile=str(tls.ca))
    with_certificate.load_cert_chain(cert, key)
    without_certificate = ssl.create_default_context(cafile=str(tls.ca))
    with Mosquitto(tmp_path / "broker", tls=tls, require_certificate=True) as broker:
        client = new_client()
        client.tls_set_context(with_certificate)
        with connected(client, "localhost", broker.port) as recorder:
            assert recorder.connacks[0][1] == 0
        # TLS 1.3: the client's handshake completes; the broker's alert arrives on first read
        with (
            pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"),
            socket.create_connection(("localhost", broker.port), timeout=TIMEOUT) as raw,
            without_certificate.wrap_socket(raw, server_hostname="localhost") as refused,
        ):
            refused.recv(1)


@pytest.mark.usefixtures("mosquitto")
def test_password_file_admits_only_the_right_password(tmp_path: Path) -> None:
    """A broker with a password file accepts the right password and refuses a wrong one."""
    passwords = make_password_file(tmp_path / "passwd", {"alice": "s3cret", "bob": "other"})
    with Mosquitto(tmp_path / "broker", password_file=passwords) as broker:
        codes = []
        for password in ("s3cret", "wrong"):
            client = new_client()
            client.username_pw_set("alice", password)
            with connected(client, broker.host, broker.port) as recorder:
                codes.append(recorder.connacks[0][1])
    assert [code.is_failure for code in codes] == [False, True]


def test_influx_line_comes_back_from_export(
    victoria_metrics: VictoriaMetrics, unique_topic: str
) -> None:
    """A line written with influxdb-client's v2 write API is exported as measurement_field."""
    write_line(
        victoria_metrics, f"telemetry,site={unique_topic},asset=a1 temp=1.5 1700000000123456789"
    )
    series = victoria_metrics.export(f'{{site="{unique_topic}"}}')
    assert series == [
        {
            "metric": {"__name__": "telemetry_temp", "site": unique_topic, "asset": "a1"},
            "values": [1.5],
            "timestamps": [1700000000123],
        }
    ]


def test_victoria_metrics_restart_keeps_data(
    fresh_victoria_metrics: VictoriaMetrics, unique_topic: str
) -> None:
    """Data written before a VictoriaMetrics restart is still exported after it."""
    write_line(
        fresh_victoria_metrics, f"telemetry,site={unique_topic},asset=a1 temp=2 946684800000000000"
    )
    fresh_victoria_metrics.restart()
    series = fresh_victoria_metrics.export(f'telemetry_temp{{site="{unique_topic}"}}')
    assert [(s["values"], s["timestamps"]) for s in series] == [([2.0], [946684800000])]


@pytest.mark.slow
def test_a_rabbitmq_node_whose_mqtt_port_was_taken_starts_on_new_ports(tmp_path: Path) -> None:
    """A port taken between choosing it and the node binding it: one retry, new ports."""
    cluster = RabbitCluster(tmp_path / "rabbitmq", size=1)
    taken_port = cluster.nodes[0].mqtt_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", taken_port))
        taken.listen()
        try:
            cluster.start()
        except MissingBinaryError as exc:
            not_installed(str(exc))
        try:
            assert cluster.nodes[0].mqtt_port != taken_port
            assert cluster.running_nodes() == 1
        finally:
            cluster.stop()
