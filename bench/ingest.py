"""Ingest throughput: ``meshwatch run`` against a bare paho QoS 1 subscriber, same backlog.

One run starts one mosquitto (``meshwatch.localservers.Mosquitto``: unlimited queues,
persistence, 1,000 messages in flight) and, for each workload (single-reading messages, then
50-reading batched messages) and each subscriber (a bare paho subscriber that only counts and
acks, then ``meshwatch run`` with its embedded SQLite store):

1. creates the subscriber's persistent session (MQTT 5, ``clean_start=False``, QoS 1
   subscription) and takes it offline;
2. publishes every message of the workload at QoS 1 while it is offline, and waits for every
   PUBACK (the broker now holds the whole backlog for that session);
3. starts the subscriber and times how long it takes to drain the backlog: the bare subscriber
   until it has counted every message, meshwatch until ``SELECT count(*) FROM telemetry``
   (polled every 50 ms through a separate read-only connection) reaches the readings sent.

The publisher and the subscriber never run at the same time, so the subscriber has the two
cores to itself and the broker. The payloads are generated once per workload and the very same
bytes are published for both subscribers. After each meshwatch drain the store is checked
(row count, distinct timestamps, per-asset counts, a sample of the stored fields, no dead
letters) and whatever meshwatch left unacked in its session is counted.

Run ``.venv/bin/python bench/ingest.py`` (or ``make bench``); ``--quick`` for a smoke run.
See ``bench/README.md`` for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Console
from rich.table import Table

from meshwatch.localservers import Mosquitto, free_port

#: Goals from the issue.
GOAL_SINGLE_RATIO = 0.8
GOAL_BATCHED_READINGS_PER_S = 50_000.0

TOPIC_TEMPLATE = "plant/{site}/{asset}/telemetry"
TOPIC_FILTER = "plant/+/+/telemetry"
KIND = "cnc-mill"
#: 2023-11-14T22:13:20Z in epoch ms: every reading gets ``BASE_MS + its index`` (distinct, past).
BASE_MS = 1_700_000_000_000
SESSION_EXPIRY_S = 3600
RECEIVE_MAXIMUM = 1000
PUBLISHER_INFLIGHT = 1000
#: Messages the publisher may have outstanding (queued in paho or in flight) at once.
PUBLISHER_WINDOW = 30_000
POLL_INTERVAL_S = 0.05
#: A drain that makes no progress for this long is reported as a hang.
STALL_S = 30.0
BARE_CLIENT_ID = "bench-bare"
MESHWATCH_CLIENT_ID = "bench-meshwatch"
STATUS_PREFIX = "meshwatch"
#: How many stored rows are compared field by field with what was published.
FIELD_SAMPLE = 500
#: How long the session check after a drain waits for messages meshwatch left unacked.
LEFTOVER_WAIT_S = 1.0


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """Messages of one workload, generated once and published to both subscribers.

    Attributes
    ----------
    name : str
        ``"single"`` (one reading a message) or ``"batched"`` (an array of readings).
    batch : int
        Readings per message; 1 for single-reading messages (a JSON object, not an array).
    assets : int
        Number of assets; message ``i`` comes from asset ``i % assets``.
    sites : int
        Number of sites; asset ``a`` sits at site ``a % sites``.
    messages : list of tuple of (str, bytes)
        Topic and payload of each message, in publishing order.
    """

    name: str
    batch: int
    assets: int
    sites: int
    messages: list[tuple[str, bytes]]

    @property
    def readings(self) -> int:
        """Readings in all messages."""
        return len(self.messages) * self.batch

    @property
    def payload_bytes(self) -> int:
        """Bytes of all payloads."""
        return sum(len(p) for _, p in self.messages)


def site_asset(asset_index: int, sites: int) -> tuple[str, str]:
    """Return the site and asset ID of asset number ``asset_index``.

    Parameters
    ----------
    asset_index : int
        Asset number, from 0.
    sites : int
        Number of sites the assets are spread over.

    Returns
    -------
    tuple of (str, str)
        ``("site-3", "cnc-08")`` for asset 8 of 5 sites.
    """
    return f"site-{asset_index % sites}", f"cnc-{asset_index:02d}"


def metrics_for(reading: int) -> dict[str, float]:
    """Return the four metrics of reading number ``reading`` (deterministic).

    Parameters
    ----------
    reading : int
        Index of the reading in its workload.

    Returns
    -------
    dict of str to float
        ``vibration_rms``, ``spindle_temp_c``, ``spindle_rpm`` and ``power_kw``.
    """
    return {
        "vibration_rms": round(0.3 + (reading % 101) / 1000, 3),
        "spindle_temp_c": round(55.0 + (reading % 37) / 10, 1),
        "spindle_rpm": float(8000 + reading % 500),
        "power_kw": round(4.0 + (reading % 53) / 100, 2),
    }


def make_workload(name: str, messages: int, batch: int, assets: int, sites: int) -> Workload:
    """Generate the messages of a workload.

    Parameters
    ----------
    name : str
        Workload name.
    messages : int
        Number of MQTT messages.
    batch : int
        Readings per message; 1 makes each payload one JSON object, more a JSON array.
    assets : int
        Number of assets (message ``i`` belongs to asset ``i % assets``).
    sites : int
        Number of sites.

    Returns
    -------
    Workload
        The topics and payload bytes; reading ``r`` has ``ts = BASE_MS + r`` (epoch ms).
    """
    topics = [
        TOPIC_TEMPLATE.format(site=s, asset=a)
        for s, a in (site_asset(i, sites) for i in range(assets))
    ]
    dumps = orjson.dumps
    out: list[tuple[str, bytes]] = []
    for i in range(messages):
        first = i * batch
        docs = [
            {"ts": BASE_MS + r, "kind": KIND, "metrics": metrics_for(r)}
            for r in range(first, first + batch)
        ]
        out.append((topics[i % assets], dumps(docs[0] if batch == 1 else docs)))
    return Workload(name, batch, assets, sites, out)


def expected_per_asset(workload: Workload) -> dict[tuple[str, str], int]:
    """Return how many readings each (site, asset) should have stored.

    Parameters
    ----------
    workload : Workload
        The workload that was published.

    Returns
    -------
    dict of tuple of (str, str) to int
        Readings per (site, asset).
    """
    counts: dict[tuple[str, str], int] = {}
    for i in range(len(workload.messages)):
        key = site_asset(i % workload.assets, workload.sites)
        counts[key] = counts.get(key, 0) + workload.batch
    return counts


# --------------------------------------------------------------------------- MQTT helpers


def _connect_properties(expiry_s: int, receive_maximum: int | None = None) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def _nodelay(client: mqtt.Client) -> None:
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _loop_until(client: mqtt.Client, done: Callable[[], bool], timeout: float, what: str) -> None:
    """Drive ``client``'s network loop on this thread until ``done()`` or raise on timeout."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        rc = client.loop(0.05)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"connection lost waiting for {what}: {mqtt.error_string(rc)}")


@dataclass
class _Flags:
    connected: bool = False
    session_present: bool = False
    subscribed: bool = False
    disconnected: bool = False
    received: int = 0
    payloads: list[bytes] = field(default_factory=list)


def _client(client_id: str, flags: _Flags, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if rc.is_failure:
            raise RuntimeError(f"broker refused {client_id}: {rc}")
        _nodelay(c)
        flags.session_present = f.session_present
        flags.connected = True

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        if any(rc.is_failure or rc.value != 1 for rc in rcs):
            raise RuntimeError(f"subscription of {client_id} not granted at QoS 1: {rcs}")
        flags.subscribed = True

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        flags.received += 1
        flags.payloads.append(bytes(msg.payload))

    def on_disconnect(
        c: mqtt.Client,
        u: object,
        f: mqtt.DisconnectFlags,
        rc: ReasonCode,
        p: Properties | None,
    ) -> None:
        flags.disconnected = True

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    return client


def create_session(host: str, port: int, client_id: str) -> None:
    """Create a persistent QoS 1 session subscribed to the telemetry topics, then go offline.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID of the session.
    """
    flags = _Flags()
    client = _client(client_id, flags, manual_ack=True)
    client.connect(
        host, port, clean_start=False, properties=_connect_properties(SESSION_EXPIRY_S, 1000)
    )
    _loop_until(client, lambda: flags.connected, 10, f"CONNACK for {client_id}")
    client.subscribe(TOPIC_FILTER, qos=1)
    _loop_until(client, lambda: flags.subscribed, 10, f"SUBACK for {client_id}")
    client.disconnect()
    _loop_until(client, lambda: flags.disconnected, 10, f"disconnect of {client_id}")


def leftover_and_drop(host: str, port: int, client_id: str, wait: float) -> int:
    """Count the messages still queued or unacked in a session, then delete the session.

    Resumes the session (``clean_start=False``, session expiry 0 so that it ends with this
    connection), takes whatever the broker sends within ``wait`` seconds without acking it,
    and disconnects: the broker then discards the session and its queue.

    Parameters
    ----------
    host, port : str, int
        The broker.
    client_id : str
        Client ID of the session.
    wait : float
        Seconds to wait for messages after the CONNACK.

    Returns
    -------
    int
        Messages the broker still had for the session (0 if it was fully acked, or absent).
    """
    flags = _Flags()
    client = _client(client_id, flags, manual_ack=True)
    client.connect(host, port, clean_start=False, properties=_connect_properties(0, 65535))
    _loop_until(client, lambda: flags.connected, 10, f"CONNACK for {client_id}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()
    _loop_until(client, lambda: flags.disconnected, 10, f"disconnect of {client_id}")
    return flags.received


@dataclass
class PublishResult:
    """How publishing one workload's backlog went.

    Attributes
    ----------
    messages : int
        Messages published, each PUBACKed by the broker.
    seconds : float
        From the first ``publish()`` to the last PUBACK.
    """

    messages: int
    seconds: float


def publish_all(host: str, port: int, messages: list[tuple[str, bytes]]) -> PublishResult:
    """Publish every message at QoS 1 and wait until the broker has acknowledged each one.

    Parameters
    ----------
    host, port : str, int
        The broker.
    messages : list of tuple of (str, bytes)
        Topic and payload of each message.

    Returns
    -------
    PublishResult
        Count and duration.
    """
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-publisher",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
    client.max_queued_messages_set(0)

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if not rc.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect(host, port, clean_start=True)
    _nodelay(client)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("publisher: no CONNACK within 10 s")
        started = time.monotonic()
        deadline = time.monotonic() + 120 + len(messages) / 1000
        publish = client.publish
        infos: list[mqtt.MQTTMessageInfo] = []
        for index, (topic, payload) in enumerate(messages):
            if index >= PUBLISHER_WINDOW:
                # paho's message IDs are 16 bits: never have more than 65,535 outstanding
                infos[index - PUBLISHER_WINDOW].wait_for_publish(deadline - time.monotonic())
            info = publish(topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publisher: publish() of message {index} failed: {info.rc}")
            infos.append(info)
        for info in infos:
            while not info.is_published():
                if time.monotonic() > deadline:
                    missing = sum(not i.is_published() for i in infos)
                    raise RuntimeError(f"publisher: {missing} messages never PUBACKed")
                time.sleep(0.005)
        seconds = time.monotonic() - started
    finally:
        client.disconnect()
        client.loop_stop()
    return PublishResult(len(messages), seconds)


# --------------------------------------------------------------------------- bare subscriber


def bare_child(host: str, port: int, expected: int, timeout: float) -> None:
    """Body of the bare subscriber process: count and ack until ``expected`` messages came.

    Prints one JSON object on stdout with ``time.monotonic()`` stamps (the clock is shared
    with the parent on Linux) and the CPU seconds the process used until the last message.

    Parameters
    ----------
    host, port : str, int
        The broker.
    expected : int
        Messages to receive.
    timeout : float
        Seconds after which it gives up and reports what it counted.
    """
    started = time.monotonic()
    count = 0
    stamps: dict[str, float] = {}
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=BARE_CLIENT_ID,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=True,
    )

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        sock = c.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stamps["connack"] = time.monotonic()
        stamps["session_present"] = float(f.session_present)
        c.subscribe(TOPIC_FILTER, qos=1)  # as every subscriber should: survives a lost session

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        count += 1
        c.ack(msg.mid, msg.qos)
        if count == 1:
            stamps["first"] = time.monotonic()
        if count == expected:
            stamps["last"] = time.monotonic()
            stamps["cpu"] = time.process_time()

    client.on_connect = on_connect
    client.on_message = on_message
    stamps["connect"] = time.monotonic()
    client.connect(
        host,
        port,
        clean_start=False,
        properties=_connect_properties(SESSION_EXPIRY_S, RECEIVE_MAXIMUM),
    )
    error = ""
    deadline = started + timeout
    loop = client.loop
    while count < expected:
        rc = loop(1.0)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            error = f"connection lost: {mqtt.error_string(rc)}"
            break
        if time.monotonic() > deadline:
            error = f"timed out after {timeout:g} s"
            break
    # flush the last PUBACKs, then leave the session (the parent deletes it)
    flush_until = time.monotonic() + 2
    while client.want_write() and time.monotonic() < flush_until:
        loop(0.05)
    client.disconnect()
    loop(0.1)
    print(json.dumps({"count": count, "started": started, "error": error, **stamps}), flush=True)


# --------------------------------------------------------------------------- results


@dataclass
class Drain:
    """One subscriber draining one workload's backlog.

    Attributes
    ----------
    workload, subscriber : str
        What was measured.
    messages, readings : int
        Backlog size.
    publish : PublishResult
        How the backlog was published.
    total_s : float or None
        From starting the subscriber process to the last message counted / row stored.
    steady_s : float or None
        From the first message counted / first rows visible to the last (no start-up).
    steady_readings : int
        Readings handled within ``steady_s``.
    cpu_s : float or None
        CPU seconds of the subscriber process until the backlog was drained.
    broker_cpu_s : float or None
        CPU seconds of mosquitto during the same time.
    status : str
        ``"ok"`` or what went wrong (crash, hang, wrong count).
    checks : list of str
        Correctness findings (meshwatch only); empty when all passed.
    notes : list of str
        Anything else worth printing.
    """

    workload: str
    subscriber: str
    messages: int
    readings: int
    publish: PublishResult
    total_s: float | None = None
    steady_s: float | None = None
    steady_readings: int = 0
    cpu_s: float | None = None
    broker_cpu_s: float | None = None
    status: str = "ok"
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_rate(self) -> float | None:
        """Readings per second from process start."""
        if self.status != "ok" or not self.total_s:
            return None
        return self.readings / self.total_s

    @property
    def steady_rate(self) -> float | None:
        """Readings per second from the first to the last message or row."""
        if self.status != "ok" or not self.steady_s:
            return None
        return self.steady_readings / self.steady_s


@dataclass
class _Seen:
    """What polling the store saw: when rows first appeared and when the count was reached."""

    count: int = 0
    first: tuple[float, int] | None = None  # (time, count) of the first poll that saw rows
    done: float | None = None
    why: str = ""


def _cpu_seconds(pid: int) -> float | None:
    """CPU (user + system) seconds used so far by a live process, from ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _find_pid(needle: str) -> int | None:
    """PID of the process whose command line contains ``needle`` (our mosquitto)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            return int(entry.name)
    return None


class Bench:
    """Runs the drains against one broker and collects the results.

    Parameters
    ----------
    broker : Mosquitto
        The running broker.
    workdir : Path
        Where data dirs and logs go.
    console : Console
        Progress output.
    profile_dir : Path, optional
        If set, ``py-spy record`` samples meshwatch during each drain into this directory.
    """

    def __init__(
        self, broker: Mosquitto, workdir: Path, console: Console, profile_dir: Path | None
    ) -> None:
        self.broker = broker
        self.workdir = workdir
        self.console = console
        self.profile_dir = profile_dir
        self.broker_pid = _find_pid(str(broker.conf_path))
        self.meshwatch_bin = _meshwatch_binary()

    def _broker_cpu(self) -> float | None:
        return None if self.broker_pid is None else _cpu_seconds(self.broker_pid)

    def _backlog(self, client_id: str, workload: Workload) -> PublishResult:
        result = publish_all(self.broker.host, self.broker.port, workload.messages)
        self.console.log(
            f"{workload.name}: published {result.messages:,} messages for {client_id} "
            f"in {result.seconds:.2f} s ({result.messages / result.seconds:,.0f} msg/s)"
        )
        return result

    # ---- bare ----

    def bare(self, workload: Workload) -> Drain:
        """Measure the bare paho subscriber on ``workload``."""
        host, port = self.broker.host, self.broker.port
        leftover_and_drop(host, port, BARE_CLIENT_ID, 0.1)  # a session of an earlier run
        create_session(host, port, BARE_CLIENT_ID)
        published = self._backlog(BARE_CLIENT_ID, workload)
        n = len(workload.messages)
        drain = Drain(workload.name, "bare paho", n, workload.readings, published)
        timeout = 60 + n / 2000
        broker_before = self._broker_cpu()
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--bare-child", host, str(port), str(n), str(timeout)],
            capture_output=True,
            text=True,
            check=False,
        )
        broker_after = self._broker_cpu()
        try:
            report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            drain.status = f"crashed (exit {proc.returncode})"
            drain.notes.append(proc.stderr.strip()[-2000:])
            return drain
        if report["error"] or report["count"] < n:
            drain.status = f"{report['error'] or 'stopped'}: counted {report['count']:,} of {n:,}"
            return drain
        drain.total_s = report["last"] - started
        drain.steady_s = report["last"] - report["first"]
        drain.steady_readings = (n - 1) * workload.batch
        drain.cpu_s = report["cpu"]
        if broker_before is not None and broker_after is not None:
            drain.broker_cpu_s = broker_after - broker_before
        if report["count"] != n:
            drain.notes.append(f"bare counted {report['count']:,} messages (> {n:,})")
        leftover = leftover_and_drop(host, port, BARE_CLIENT_ID, 0.2)
        if leftover:
            drain.notes.append(f"bare left {leftover} messages unacked")
        return drain

    # ---- meshwatch ----

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHWATCH_")}
        env.update(
            MESHWATCH_DATA_DIR=str(data_dir),
            MESHWATCH_MQTT__HOST=self.broker.host,
            MESHWATCH_MQTT__PORT=str(self.broker.port),
            MESHWATCH_MQTT__CLIENT_ID=MESHWATCH_CLIENT_ID,
            MESHWATCH_HTTP__PORT="0",
        )
        return env

    def _spawn(self, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [str(self.meshwatch_bin), "run"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _meshwatch_session(self, env: dict[str, str], log_path: Path) -> None:
        """Start ``meshwatch run`` until it says online (it has subscribed), then SIGTERM it."""
        host, port = self.broker.host, self.broker.port
        flags = _Flags()
        watcher = _client("bench-status-watcher", flags)
        watcher.connect(host, port, clean_start=True)
        _loop_until(watcher, lambda: flags.connected, 10, "CONNACK for the status watcher")
        watcher.subscribe(f"{STATUS_PREFIX}/status/{MESHWATCH_CLIENT_ID}", qos=1)
        _loop_until(watcher, lambda: flags.subscribed, 10, "SUBACK for the status watcher")

        def online() -> bool:
            for payload in flags.payloads:
                try:
                    if orjson.loads(payload).get("status") == "online":
                        return True
                except orjson.JSONDecodeError:
                    pass
            flags.payloads.clear()
            if proc.poll() is not None:
                raise RuntimeError(
                    f"meshwatch run exited (code {proc.returncode}) before it came online; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            return False

        proc = self._spawn(env, log_path)
        try:
            _loop_until(watcher, online, 30, "meshwatch run to say online")
        finally:
            _stop(proc)
            watcher.disconnect()
            watcher.loop(0.1)
        if proc.returncode != 0:
            raise RuntimeError(
                f"meshwatch run exited with {proc.returncode} on SIGTERM after creating its "
                f"session; log {log_path}:\n{_tail(log_path)}"
            )

    def meshwatch(self, workload: Workload) -> Drain:
        """Measure ``meshwatch run`` (embedded store) on ``workload``."""
        host, port = self.broker.host, self.broker.port
        data_dir = self.workdir / f"meshwatch-{workload.name}"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        log_path = self.workdir / f"meshwatch-{workload.name}.log"
        env = self._env(data_dir)
        leftover_and_drop(host, port, MESHWATCH_CLIENT_ID, 0.1)  # a session of an earlier run
        self._meshwatch_session(env, log_path)
        published = self._backlog(MESHWATCH_CLIENT_ID, workload)
        drain = Drain(
            workload.name, "meshwatch run", len(workload.messages), workload.readings, published
        )
        db = data_dir / "meshwatch.db"
        expected = workload.readings
        broker_before = self._broker_cpu()
        started = time.monotonic()
        proc = self._spawn(env, log_path)
        profiler = self._profile(proc.pid, workload.name)
        polls: list[float] = []
        try:
            seen = self._poll(proc, db, expected, polls)
        finally:
            cpu = _cpu_seconds(proc.pid)
            broker_after = self._broker_cpu()
            if profiler is not None:
                _stop(profiler, sig=signal.SIGINT, timeout=30)
            code = _stop(proc, timeout=30)
        if polls:
            drain.notes.append(
                f"count(*) poll: {len(polls)} polls, mean {1000 * sum(polls) / len(polls):.1f} ms,"
                f" max {1000 * max(polls):.1f} ms"
            )
        if seen.done is None:
            drain.status = f"{seen.why}: {seen.count:,} of {expected:,} rows"
            drain.notes.append(f"exit code {code}; log {log_path}:\n{_tail(log_path)}")
            return drain
        drain.total_s = seen.done - started
        if seen.first is not None:
            t_first, c_first = seen.first
            drain.steady_s = seen.done - t_first
            drain.steady_readings = expected - c_first
        drain.cpu_s = cpu
        if broker_before is not None and broker_after is not None:
            drain.broker_cpu_s = broker_after - broker_before
        if code != 0:
            drain.checks.append(f"exit code {code} after SIGTERM (expected 0)")
        drain.checks.extend(verify_store(db, data_dir / "deadletters.db", workload))
        leftover = leftover_and_drop(host, port, MESHWATCH_CLIENT_ID, LEFTOVER_WAIT_S)
        if leftover:
            drain.checks.append(f"{leftover} messages still queued/unacked in its session")
        return drain

    def _poll(
        self, proc: subprocess.Popen[bytes], db: Path, expected: int, polls: list[float]
    ) -> _Seen:
        """Poll the row count every 50 ms until it reaches ``expected``, crashes or stalls.

        Each query's duration is appended to ``polls``.
        """
        seen = _Seen()
        conn: sqlite3.Connection | None = None
        last_change = time.monotonic()
        next_poll = time.monotonic()
        try:
            while True:
                next_poll += POLL_INTERVAL_S
                pause = next_poll - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if proc.poll() is not None:
                    seen.why = f"meshwatch run exited (code {proc.returncode})"
                    return seen
                if conn is None:
                    if not db.exists():
                        continue
                    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                t0 = time.monotonic()
                try:
                    (n,) = conn.execute("SELECT count(*) FROM telemetry").fetchone()
                except sqlite3.OperationalError:
                    continue  # not created yet
                now = time.monotonic()
                polls.append(now - t0)
                if n != seen.count:
                    seen.count = int(n)
                    last_change = now
                    if seen.first is None and seen.count > 0:
                        seen.first = (now, seen.count)
                if seen.count >= expected:
                    seen.done = now
                    return seen
                if now - last_change > STALL_S:
                    seen.why = f"no progress for {STALL_S:g} s (hang)"
                    return seen
        finally:
            if conn is not None:
                conn.close()

    def _profile(self, pid: int, name: str) -> subprocess.Popen[bytes] | None:
        if self.profile_dir is None:
            return None
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.profile_dir / f"meshwatch-{name}.txt"
        return subprocess.Popen(
            [pyspy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
             "--rate", "100", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip


def _meshwatch_binary() -> Path:
    beside = Path(sys.executable).parent / "meshwatch"
    if beside.exists():
        return beside
    found = shutil.which("meshwatch")
    if found is None:
        raise SystemExit("meshwatch console script not found: run `make install` first")
    return Path(found)


def _stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal a child and wait for it; SIGKILL it if it does not exit within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9
    return proc.returncode


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def verify_store(db: Path, deadletters: Path, workload: Workload) -> list[str]:
    """Check that the store holds exactly the published readings, once each.

    Parameters
    ----------
    db : Path
        meshwatch's embedded store.
    deadletters : Path
        meshwatch's dead-letter store.
    workload : Workload
        What was published.

    Returns
    -------
    list of str
        One line per problem found; empty if the store is exactly right.
    """
    problems: list[str] = []
    expected = workload.readings
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows, distinct, lo, hi = conn.execute(
            "SELECT count(*), count(DISTINCT ts), min(ts), max(ts) FROM telemetry"
        ).fetchone()
        if rows != expected:
            problems.append(f"{rows:,} rows stored, {expected:,} readings published")
        if distinct != rows:
            problems.append(f"{rows - distinct:,} duplicate timestamps")
        want_lo, want_hi = BASE_MS * 1_000_000, (BASE_MS + expected - 1) * 1_000_000
        if (lo, hi) != (want_lo, want_hi):
            problems.append(f"ts range {lo}..{hi}, expected {want_lo}..{want_hi}")
        per_asset = {
            (site, asset): n
            for site, asset, n in conn.execute(
                "SELECT site, asset, count(*) FROM telemetry GROUP BY site, asset"
            )
        }
        if per_asset != expected_per_asset(workload):
            problems.append("readings per (site, asset) differ from what was published")
        (wrong_kind,) = conn.execute(
            "SELECT count(*) FROM telemetry WHERE kind != ?", (KIND,)
        ).fetchone()
        if wrong_kind:
            problems.append(f"{wrong_kind:,} rows with a kind other than {KIND}")
        step = max(1, expected // FIELD_SAMPLE)
        for r in range(0, expected, step):
            ts = (BASE_MS + r) * 1_000_000
            row = conn.execute("SELECT fields FROM telemetry WHERE ts = ?", (ts,)).fetchone()
            if row is None or orjson.loads(row[0]) != metrics_for(r):
                problems.append(f"reading {r} (ts {ts}) stored as {row!r}")
                break
    finally:
        conn.close()
    if deadletters.exists():
        dl = sqlite3.connect(f"file:{deadletters}?mode=ro", uri=True)
        try:
            (letters,) = dl.execute("SELECT count(*) FROM deadletters").fetchone()
        finally:
            dl.close()
        if letters:
            problems.append(f"{letters:,} dead letters")
    return problems


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ratio(mesh: Drain, bare: Drain) -> float | None:
    m, b = mesh.steady_rate, bare.steady_rate
    return None if m is None or not b else m / b


def report(console: Console, drains: list[Drain]) -> bool:
    """Print the results and the goals; return whether every goal passed and checks are clean.

    Parameters
    ----------
    console : Console
        Where to print.
    drains : list of Drain
        Results, bare and meshwatch for each workload.

    Returns
    -------
    bool
        True if all goals passed and every meshwatch run stored exactly what was published.
    """
    table = Table(title="Draining a QoS 1 backlog (subscriber offline while publishing)")
    columns = (
        ("workload", "left"), ("subscriber", "left"), ("msgs", "right"),
        ("readings", "right"), ("publish\nmsg/s", "right"), ("start→\ndone s", "right"),
        ("readings/s\nfrom start", "right"), ("first→\nlast s", "right"),
        ("readings/s\nfirst→last", "right"), ("sub\nCPU s", "right"),
        ("broker\nCPU s", "right"), ("status / checks", "left"),
    )  # fmt: skip
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for d in drains:
        if d.status != "ok":
            status = f"[red]{d.status}[/]"
        elif d.subscriber == "bare paho":
            status = "ok"
        else:
            status = "[green]exact[/]" if not d.checks else "[red]" + "; ".join(d.checks) + "[/]"
        table.add_row(
            d.workload,
            d.subscriber,
            f"{d.messages:,}",
            f"{d.readings:,}",
            f"{d.publish.messages / d.publish.seconds:,.0f}",
            _fmt(d.total_s, ".2f"),
            _fmt(d.total_rate, ",.0f"),
            _fmt(d.steady_s, ".2f"),
            _fmt(d.steady_rate, ",.0f"),
            _fmt(d.cpu_s, ".2f"),
            _fmt(d.broker_cpu_s, ".2f"),
            status,
        )
    console.print(table)

    goals = Table(title="Goals (rates from first to last message/row: Python start-up excluded)")
    for name in ("goal", "measured", "target", "result"):
        goals.add_column(name)
    ok = True

    def verdict(value: float | None, target: float, *runs: Drain) -> str:
        nonlocal ok
        if value is not None and value >= target:
            return "[green]PASS[/]"
        if value is None and all(r.status == "ok" and r.steady_s == 0 for r in runs):
            return "n/a (drained within one poll: use more messages)"
        ok = False
        return "[red]MISS[/]"

    by = {(d.workload, d.subscriber): d for d in drains}
    for workload in ("single", "batched"):
        mesh, bare = by.get((workload, "meshwatch run")), by.get((workload, "bare paho"))
        if mesh is None or bare is None:
            continue
        ratio = _ratio(mesh, bare)
        if workload == "single":
            goals.add_row(
                "single-reading: meshwatch / bare readings/s",
                _fmt(ratio, ".2f"),
                f"≥ {GOAL_SINGLE_RATIO}",
                verdict(ratio, GOAL_SINGLE_RATIO, mesh),
            )
        else:
            rate = mesh.steady_rate
            goals.add_row(
                "batched: meshwatch readings/s",
                _fmt(rate, ",.0f"),
                f"≥ {GOAL_BATCHED_READINGS_PER_S:,.0f}",
                verdict(rate, GOAL_BATCHED_READINGS_PER_S, mesh),
            )
            goals.add_row("batched: meshwatch / bare readings/s (info)", _fmt(ratio, ".2f"), "", "")
        ok = ok and mesh.status == "ok" and not mesh.checks
    console.print(goals)
    for d in drains:
        for note in d.notes:
            console.print(f"[dim]{d.workload} / {d.subscriber}: {note}[/]")
    return ok


# --------------------------------------------------------------------------- main


@contextmanager
def _workdir(path: Path | None, keep: bool) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="meshwatch-bench-"))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.
    """
    parser = argparse.ArgumentParser(
        description="Drain the same QoS 1 backlog with a bare paho subscriber and with "
        "`meshwatch run`; compare readings/s.",
    )
    parser.add_argument(
        "--messages", type=int, default=100_000, help="single-reading messages (default 100000)"
    )
    parser.add_argument(
        "--batched-messages",
        type=int,
        default=20_000,
        help="batched messages (default 20000, i.e. 1,000,000 readings with --batch 50)",
    )
    parser.add_argument("--batch", type=int, default=50, help="readings per batched message")
    parser.add_argument("--assets", type=int, default=50, help="assets (default 50)")
    parser.add_argument("--sites", type=int, default=5, help="sites (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5,000 single and 500 batched messages"
    )
    parser.add_argument(
        "--only", choices=("single", "batched"), help="run one workload only (default both)"
    )
    parser.add_argument("--workdir", type=Path, help="keep broker, data and logs here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record meshwatch with `py-spy record --format raw` during each drain into DIR "
        "(py-spy takes CPU: rates of such a run are not comparable)",
    )
    parser.add_argument("--bare-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.batched_messages = 5_000, 500
    for name in ("messages", "batched_messages", "batch", "assets", "sites"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 if all goals passed and the stores were exact.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 if every goal passed and every check held, 1 otherwise.
    """
    args = parse_args(argv)
    if args.bare_child:
        host, port, n, timeout = args.bare_child
        bare_child(host, int(port), int(n), float(timeout))
        return 0
    console = Console()
    if not console.is_terminal:  # piped or `make bench` in CI: do not squeeze the table to 80
        console = Console(width=160)
    plan = []
    if args.only in (None, "single"):
        plan.append(("single", args.messages, 1))
    if args.only in (None, "batched"):
        plan.append(("batched", args.batched_messages, args.batch))
    drains: list[Drain] = []
    began = time.monotonic()
    with _workdir(args.workdir, args.keep) as workdir:
        console.log(f"work dir {workdir}")
        with Mosquitto(workdir / "mosquitto", free_port()) as broker:
            bench = Bench(broker, workdir, console, args.profile)
            for name, messages, batch in plan:
                t0 = time.monotonic()
                workload = make_workload(name, messages, batch, args.assets, args.sites)
                console.log(
                    f"{name}: {messages:,} messages, {workload.readings:,} readings, "
                    f"{workload.payload_bytes / 1e6:.1f} MB generated in "
                    f"{time.monotonic() - t0:.1f} s"
                )
                for measure in (bench.bare, bench.meshwatch):
                    drain = measure(workload)
                    console.log(
                        f"{name} / {drain.subscriber}: {drain.status}, "
                        f"{_fmt(drain.steady_rate, ',.0f')} readings/s first→last"
                    )
                    drains.append(drain)
                del workload
    console.log(f"total {time.monotonic() - began:.0f} s")
    ok = report(console, drains)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                [
                    {**asdict(d), "total_rate": d.total_rate, "steady_rate": d.steady_rate}
                    for d in drains
                ],
                indent=2,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
