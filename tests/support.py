"""Helpers shared by integration tests: run `meshwatch run`, publish, wait, read back."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from meshwatch.localservers import Mosquitto, VictoriaMetrics, free_port

BASE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms: a fixed past, so no future rejects


def not_installed(reason: str) -> NoReturn:
    """Skip a test whose server or browser is not installed; in CI (CI=true), fail it."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: missing programs fail instead of skipping)")
    pytest.skip(reason)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def reading(n: int, *, kind: str | None = "cnc-mill") -> dict[str, object]:
    """The n-th test reading: a distinct ms timestamp and values derived from n."""
    doc: dict[str, object] = {"ts": BASE_TS + n, "metrics": {"temp": n * 0.5, "rpm": float(n)}}
    if kind:
        doc["kind"] = kind
    return doc


def fleet_messages(
    prefix: str, count: int, *, sites: int = 5, assets: int = 50, start: int = 0
) -> list[tuple[str, bytes]]:
    """`count` single-reading messages spread over `assets` assets at `sites` sites."""
    out = []
    for n in range(start, start + count):
        a = n % assets
        out.append((f"{prefix}/s{a % sites}/a{a}/telemetry", orjson.dumps(reading(n))))
    return out


def site_scoped(messages: Sequence[tuple[str, bytes]], prefix: str) -> list[tuple[str, bytes]]:
    """Messages with their sites renamed ``<prefix>s…``: this test's series stay apart.

    Select them in a shared time-series server with ``site=~"<prefix>s.*"``.
    """
    return [(topic.replace("/s", f"/{prefix}s", 1), payload) for topic, payload in messages]


def tls_env(ca: Path, **extra: str) -> dict[str, str]:
    """Settings of a pipeline that verifies a test broker's certificate (issued to localhost)."""
    return {
        "MESHWATCH_MQTT__HOST": "localhost",
        "MESHWATCH_MQTT__TLS": "true",
        "MESHWATCH_MQTT__CA_FILE": str(ca),
        **extra,
    }


def expected_keys(messages: Iterable[tuple[str, bytes]]) -> set[tuple[str, str, int]]:
    """(site, asset, ts ns) of every reading in single-reading messages."""
    keys = set()
    for topic, payload in messages:
        _, site, asset, _ = topic.split("/")
        keys.add((site, asset, int(orjson.loads(payload)["ts"]) * 1_000_000))
    return keys


class Publisher:
    """A QoS 1 publisher that knows which messages the broker acknowledged."""

    def __init__(
        self,
        broker: Mosquitto,
        client_id: str = "",
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        # RabbitMQ 3.10's MQTT plugin speaks 3.1.1 only: the cluster tests pass MQTTv311.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=False if protocol == MQTTProtocolVersion.MQTTv311 else None,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._nodelay
        self.client.on_publish = self._on_publish
        self.sent: dict[int, tuple[str, bytes]] = {}
        self.acked: set[int] = set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    @staticmethod
    def _nodelay(client: mqtt.Client, *args: object) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        self.acked.add(mid)

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Queue messages at QoS 1 (paho resends them after a reconnect)."""
        for topic, payload in messages:
            # While disconnected paho queues the message and returns NO_CONN: not an error here.
            info = self.client.publish(topic, payload, qos=1)
            self.sent[info.mid] = (topic, payload)

    def wait(self, timeout: float = 60) -> None:
        """Wait until the broker acknowledged every message published so far."""
        wait_for(lambda: len(self.acked) >= len(self.sent), timeout, "PUBACKs")

    def acknowledged(self) -> list[tuple[str, bytes]]:
        """Messages the broker has acknowledged."""
        return [m for mid, m in self.sent.items() if mid in self.acked]

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


def subscribe(broker: Mosquitto, topic: str) -> tuple[mqtt.Client, list[mqtt.MQTTMessage]]:
    """A QoS 1 subscriber to `topic` (SUBACK awaited) and the list its messages go to."""
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = lambda c, u, m: got.append(m)
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert subscribed.wait(10)
    return client, got


def publish(broker: Mosquitto, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and wait until the broker has acknowledged all."""
    pub = Publisher(broker)
    pub.publish(messages)
    pub.wait()
    pub.close()


@dataclass(frozen=True, slots=True)
class Message:
    """One message under the pipeline's prefix, as a maintenance tool sees it."""

    topic: str
    payload: bytes
    retain: bool
    at: float = 0.0  # time.monotonic() when it arrived

    def json(self) -> Any:
        return orjson.loads(self.payload)


class Watcher:
    """Subscribes to everything the pipeline publishes (``<prefix>/#``) and records it."""

    def __init__(self, broker: Mosquitto, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        wait_for(self._ready.is_set, 10, f"SUBACK for {prefix}/#")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Message(msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic())
            )

    def on(self, kind: str) -> list[Message]:
        """Messages on ``<prefix>/<kind>/...`` (alerts, health, reroute, cmd)."""
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(f"{self.prefix}/{kind}/")]

    def alerts(self) -> list[dict[str, Any]]:
        return [m.json() for m in self.on("alerts")]

    def health(self, site: str, asset: str) -> dict[str, Any] | None:
        """The latest health message of an asset."""
        found = [m for m in self.on("health") if m.topic.endswith(f"/{site}/{asset}")]
        return found[-1].json() if found else None

    def status(self, site: str, asset: str) -> str | None:
        """The status in the asset's latest health message (None before the first)."""
        latest = self.health(site, asset)
        return None if latest is None else str(latest["status"])

    def command(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Publish a command and wait for its reply on ``<prefix>/cmd/result``."""
        request_id = f"r{len(self.messages)}-{random.random()}"
        self.client.publish(
            f"{self.prefix}/cmd/{name}", orjson.dumps({**body, "request_id": request_id}), qos=1
        )

        def replies() -> list[dict[str, Any]]:
            return [
                m.json()
                for m in self.on("cmd")
                if m.topic.endswith("/result") and m.json().get("request_id") == request_id
            ]

        wait_for(lambda: bool(replies()), 10, f"a reply to {name}")
        return replies()[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_retained(broker: Mosquitto, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish retained at QoS 1 and wait until the broker acknowledged every message."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


class PipelineProcess:
    """`meshwatch run` as a child process, configured by environment variables.

    Every started process is listed in `started`, so a fixture can kill what a failed test
    left running.
    """

    started: list[PipelineProcess] = []  # noqa: RUF012 - one registry for the whole session

    def __init__(self, env: dict[str, str], log_path: Path, config: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.config = config
        self.http_port = int(env.get("MESHWATCH_HTTP__PORT", "0"))
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_healthy: bool = True) -> None:
        """Start, and wait until /healthz says connected and subscribed."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meshwatch",
                *(["--config", str(self.config)] if self.config else []),
                "run",
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        PipelineProcess.started.append(self)
        if wait_healthy and self.http_port:
            wait_for(self.healthy, 20, f"meshwatch healthy; log:\n{self.log()}")

    def start_refused(self, says: str, what: str) -> None:
        """Start a pipeline the broker will not accept; wait until its log `says` why."""
        self.start(wait_healthy=False)
        wait_for(lambda: says in self.log(), 15, what)
        assert not self.healthy()

    def healthy(self) -> bool:
        """Whether /healthz answers 200."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"meshwatch exited {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def metrics(self) -> str:
        """The /metrics text."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        """SIGKILL: a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; return (exit code, seconds to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """What the process logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def pipeline_env(broker: Mosquitto, data_dir: Path, prefix: str, **extra: str) -> dict[str, str]:
    """Environment of a pipeline on `broker` with its own data dir, topic prefix and session."""
    return {
        "MESHWATCH_DATA_DIR": str(data_dir),
        "MESHWATCH_MQTT__HOST": broker.host,
        "MESHWATCH_MQTT__PORT": str(broker.port),
        "MESHWATCH_MQTT__CLIENT_ID": f"meshwatch-{prefix}",
        "MESHWATCH_MQTT__TOPIC": prefix + "/{site}/{asset}/telemetry",
        "MESHWATCH_MQTT__RECONNECT_MAX": "2",
        "MESHWATCH_HTTP__PORT": str(free_port()),
        "MESHWATCH_HTTP__HOST": "127.0.0.1",
        # One process, its state in the data dir itself; tests of --workers set their own.
        "MESHWATCH_WORKERS": "1",
        **extra,
    }


def stored_keys(db: Path) -> list[tuple[str, str, int]]:
    """(site, asset, ts) of every telemetry row of an embedded store, duplicates kept."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in conn.execute("SELECT site, asset, ts FROM telemetry")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def stored_count(db: Path) -> int:
    """Telemetry rows of an embedded store (0 before it exists)."""
    return len(stored_keys(db))


def sample_count(vm: VictoriaMetrics, selector: str = '{__name__="telemetry_temp"}') -> int:
    """How many samples VictoriaMetrics holds for `selector`."""
    return sum(len(series["values"]) for series in vm.export(selector))
