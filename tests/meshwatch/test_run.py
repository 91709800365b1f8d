"""`meshwatch run` as a process: its settings take effect, it stops cleanly, it says so."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import (
    PipelineProcess,
    fleet_messages,
    pipeline_env,
    publish,
    stored_count,
    tls_env,
    wait_for,
)

from meshwatch.localservers import (
    Mosquitto,
    make_password_file,
    make_test_certificates,
)

pytestmark = pytest.mark.integration


def _retained(broker: Mosquitto, topic: str) -> dict[str, object] | None:
    """The retained message on `topic` (None when there is none)."""
    got: list[bytes] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    done.wait(1.5)
    client.loop_stop()
    client.disconnect()
    return orjson.loads(got[0]) if got and got[0] else None


def test_sigterm_finishes_and_exits_zero_within_ten_seconds(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """SIGTERM mid-stream: the process stores what it took, exits 0, well within 10 s."""
    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    publish(mosquitto, fleet_messages(unique_topic, 3000))
    code, seconds = pipeline.stop()
    assert code == 0
    assert seconds < 10
    assert "SIGTERM received" in pipeline.log()


def test_status_is_retained_online_and_offline_on_clean_stop(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """The instance's retained status says online while running and offline after SIGTERM."""
    env = pipeline_env(mosquitto, data_dir, unique_topic)
    topic = f"meshwatch/status/{env['MESHWATCH_MQTT__CLIENT_ID']}"
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    online = _retained(mosquitto, topic)
    pipeline.stop()
    offline = _retained(mosquitto, topic)
    assert online is not None and online["status"] == "online"
    assert offline is not None and offline["status"] == "offline"


def test_last_will_says_offline_after_a_crash(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """After SIGKILL the broker publishes the last will: status offline, retained."""
    env = pipeline_env(mosquitto, data_dir, unique_topic, MESHWATCH_MQTT__KEEPALIVE="5")
    topic = f"meshwatch/status/{env['MESHWATCH_MQTT__CLIENT_ID']}"
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    pipeline.kill()
    wait_for(
        lambda: (_retained(mosquitto, topic) or {}).get("status") == "offline", 15, "the last will"
    )


def test_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    """A bad env value: exit status 2 and one line on stderr naming the variable."""
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "run"],
        env={"MESHWATCH_MQTT__PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "MESHWATCH_MQTT__PORT" in result.stderr


def test_http_port_zero_turns_the_endpoint_off(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """MESHWATCH_HTTP__PORT=0: the pipeline runs and stores, and nothing listens for HTTP."""
    env = pipeline_env(mosquitto, data_dir, unique_topic)
    port = env["MESHWATCH_HTTP__PORT"]
    env["MESHWATCH_HTTP__PORT"] = "0"
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    status = f"meshwatch/status/{env['MESHWATCH_MQTT__CLIENT_ID']}"
    wait_for(
        lambda: (_retained(mosquitto, status) or {}).get("status") == "online",
        15,
        "the pipeline online",
    )
    publish(mosquitto, fleet_messages(unique_topic, 10))
    wait_for(lambda: stored_count(data_dir / "meshwatch.db") == 10, 20, "readings stored")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=1)
    pipeline.stop()


def test_metrics_count_messages_readings_rejections_and_acks(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """/metrics reports messages, readings accepted, rejections by reason and acks."""
    pipeline = PipelineProcess(pipeline_env(mosquitto, data_dir, unique_topic), tmp_path / "log")
    pipeline.start()
    publish(
        mosquitto, [*fleet_messages(unique_topic, 20), (f"{unique_topic}/s1/a1/telemetry", b"{")]
    )
    wait_for(lambda: "meshwatch_acks_total 21.0" in pipeline.metrics(), 20, "21 acks")
    text = pipeline.metrics()
    pipeline.stop()
    assert "meshwatch_messages_received_total 21.0" in text
    assert "meshwatch_readings_accepted_total 20.0" in text
    assert 'meshwatch_messages_rejected_total{reason="bad_json"} 1.0' in text
    assert "meshwatch_store_write_seconds_count" in text
    assert "meshwatch_spool_depth_lines" in text


def test_username_and_password_are_used(tmp_path: Path, data_dir: Path, unique_topic: str) -> None:
    """With a password file on the broker, the right credentials connect, wrong ones do not."""
    passwords = make_password_file(tmp_path / "passwd", {"ingest": "s3cret", "pub": "p"})
    with Mosquitto(tmp_path / "broker", password_file=passwords) as broker:
        good = pipeline_env(
            broker,
            data_dir,
            unique_topic,
            MESHWATCH_MQTT__USERNAME="ingest",
            MESHWATCH_MQTT__PASSWORD="s3cret",
        )
        pipeline = PipelineProcess(good, tmp_path / "good.log")
        pipeline.start()
        assert pipeline.stop()[0] == 0
        bad = {**good, "MESHWATCH_MQTT__PASSWORD": "wrong", "MESHWATCH_MQTT__CLIENT_ID": "other"}
        refused = PipelineProcess(bad, tmp_path / "bad.log")
        refused.start_refused("refused the connection", "a refusal")
        refused.stop()


def test_tls_with_a_ca_file_connects(tmp_path: Path, data_dir: Path, unique_topic: str) -> None:
    """MESHWATCH_MQTT__TLS with a CA file: the pipeline verifies the broker and ingests."""
    tls = make_test_certificates(tmp_path / "certs")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        env = pipeline_env(broker, data_dir, unique_topic, **tls_env(tls.ca))
        pipeline = PipelineProcess(env, tmp_path / "log")
        pipeline.start()
        assert pipeline.healthy()
        assert pipeline.stop()[0] == 0


def test_tls_without_the_ca_is_refused_and_retried(
    tmp_path: Path, data_dir: Path, unique_topic: str
) -> None:
    """A broker certificate the pipeline cannot verify is logged and never trusted."""
    tls = make_test_certificates(tmp_path / "certs")
    with Mosquitto(tmp_path / "broker", tls=tls) as broker:
        env = pipeline_env(
            broker,
            data_dir,
            unique_topic,
            MESHWATCH_MQTT__TLS="true",
            MESHWATCH_MQTT__HOST="localhost",
        )
        pipeline = PipelineProcess(env, tmp_path / "log")
        pipeline.start_refused("CERTIFICATE_VERIFY_FAILED", "a TLS error")
        pipeline.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_persistent_session_queues_readings_while_the_pipeline_is_down(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path, protocol: str
) -> None:
    """Readings published while the pipeline is stopped arrive when it returns (both protocols)."""
    env = pipeline_env(mosquitto, data_dir, unique_topic, MESHWATCH_MQTT__PROTOCOL=protocol)
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    pipeline.stop()
    publish(mosquitto, fleet_messages(unique_topic, 500))
    pipeline.start()
    wait_for(lambda: stored_count(data_dir / "meshwatch.db") == 500, 30, "queued readings")
    pipeline.stop()


def test_session_expiry_zero_means_no_queue_while_down(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """MESHWATCH_MQTT__SESSION_EXPIRY=0: the broker forgets the session when we leave."""
    env = pipeline_env(mosquitto, data_dir, unique_topic, MESHWATCH_MQTT__SESSION_EXPIRY="0")
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    pipeline.stop()
    publish(mosquitto, fleet_messages(unique_topic, 50))
    pipeline.start()
    publish(mosquitto, fleet_messages(unique_topic, 10, start=1000))
    wait_for(lambda: stored_count(data_dir / "meshwatch.db") >= 10, 30, "live readings")
    time.sleep(0.5)
    pipeline.stop()
    assert stored_count(data_dir / "meshwatch.db") == 10


def test_acked_messages_are_not_redelivered_after_a_restart(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Every stored message was really acked: a restarted pipeline receives none of them again."""
    env = pipeline_env(mosquitto, data_dir, unique_topic)
    pipeline = PipelineProcess(env, tmp_path / "log")
    pipeline.start()
    publish(mosquitto, fleet_messages(unique_topic, 3000))
    wait_for(lambda: stored_count(data_dir / "meshwatch.db") == 3000, 30, "3,000 readings")
    pipeline.stop()
    pipeline.start()
    time.sleep(1.0)
    received = pipeline.metrics()
    pipeline.stop()
    assert "meshwatch_messages_received_total 0.0" in received
