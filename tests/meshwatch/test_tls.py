"""`meshwatch run` against a broker that requires client certificates (mutual TLS)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import (
    PipelineProcess,
    fleet_messages,
    pipeline_env,
    stored_count,
    tls_env,
    wait_for,
)

from meshwatch.localservers import (
    Mosquitto,
    TlsFiles,
    make_client_certificate,
    make_test_certificates,
)

# the session broker is not used: requesting it skips these tests (or fails them in CI) when
# mosquitto is not installed, as conftest decides
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mosquitto")]

TIMEOUT = 30.0


def _publish_with_certificate(
    broker: Mosquitto,
    tls: TlsFiles,
    client: tuple[Path, Path],
    messages: Sequence[tuple[str, bytes]],
) -> None:
    """Publish at QoS 1 over mutual TLS with ``client`` (cert, key); wait for every PUBACK.

    `support.publish` connects without TLS, which this broker's only listener refuses.
    """
    cert, key = client
    connected = threading.Event()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    publisher.on_connect = lambda *args: connected.set()
    publisher.tls_set(ca_certs=str(tls.ca), certfile=str(cert), keyfile=str(key))
    publisher.connect("localhost", broker.port)
    publisher.loop_start()
    try:
        assert connected.wait(TIMEOUT), "publisher got no CONNACK"
        infos = [publisher.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()
    finally:
        publisher.disconnect()
        publisher.loop_stop()


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for localhost."""
    return make_test_certificates(tmp_path / "certs")


def test_client_certificate_connects_and_ingests(
    tls: TlsFiles, tmp_path: Path, data_dir: Path, unique_topic: str
) -> None:
    """With CA, cert and key files the pipeline passes a broker that requires them and ingests."""
    cert, key = make_client_certificate(tmp_path / "clients", tls, "meshwatch-ingest")
    publisher = make_client_certificate(tmp_path / "clients", tls, "publisher")
    messages = fleet_messages(unique_topic, 20, assets=4)
    db = data_dir / "meshwatch.db"
    with Mosquitto(tmp_path / "broker", tls=tls, require_certificate=True) as broker:
        env = pipeline_env(
            broker,
            data_dir,
            unique_topic,
            **tls_env(
                tls.ca, MESHWATCH_MQTT__CERT_FILE=str(cert), MESHWATCH_MQTT__KEY_FILE=str(key)
            ),
        )
        pipeline = PipelineProcess(env, tmp_path / "log")
        pipeline.start()
        _publish_with_certificate(broker, tls, publisher, messages)
        wait_for(lambda: stored_count(db) >= len(messages), TIMEOUT, "20 readings stored")
        assert pipeline.stop()[0] == 0
    assert stored_count(db) == len(messages)


def test_without_a_client_certificate_the_broker_refuses(
    tls: TlsFiles, tmp_path: Path, data_dir: Path, unique_topic: str
) -> None:
    """Without cert and key files a broker that requires them refuses the pipeline."""
    with Mosquitto(tmp_path / "broker", tls=tls, require_certificate=True) as broker:
        env = pipeline_env(broker, data_dir, unique_topic, **tls_env(tls.ca))
        pipeline = PipelineProcess(env, tmp_path / "log")
        # paho swallows the TLS alert, so the pipeline can only say it has no connection;
        # the broker's log says why
        pipeline.start_refused(
            f"no connection to the broker localhost:{broker.port}", "the connection error"
        )
        reason = "peer did not return a certificate"
        wait_for(lambda: reason in broker.log_path.read_text(), 15, "the broker's TLS error")
        assert pipeline.stop()[0] == 0
