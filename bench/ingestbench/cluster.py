"""The same backlog drained through a 3-node RabbitMQ cluster by meshwatch instances.

`ClusterRun` is a subscriber of the benchmark, like ``MeshwatchRun`` on mosquitto, but the
backlog sits in the cluster's replicated partition queues (``ingest.amqp``): sensors publish
MQTT 3.1.1 to the first node's MQTT plugin, which PUBACKs once a quorum of nodes holds the
message, and ``instances`` processes of ``meshwatch run`` with ``amqp.urls`` share the
partitions, each connected first to another node. They share one data dir, so one embedded
store counts the rows as on mosquitto.

Each drain:

1. starts one instance until it holds the partitions, so the exchange and the queues exist
   (RabbitMQ drops what no queue is bound for), then stops it;
2. publishes the workload at QoS 1 and waits for every PUBACK (the publish rate is the
   MQTT plugin's into quorum queues, shown in the table);
3. starts every instance and times until ``SELECT count(*) FROM telemetry`` reaches the
   readings sent, then stops them and checks the store.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from benchcommon.base import MESHWATCH, Bench, Drain, PublishResult, cpu_delta, cpu_seconds
from benchcommon.meshwatch_run import MeshwatchRun, spawn_run
from benchcommon.store import poll_rows, verify_store
from benchcommon.workloads import Workload
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from meshwatch.localservers import RabbitCluster

#: Messages in flight from the publisher, as on mosquitto.
_INFLIGHT = 1000
#: Seconds an instance may take to hold its partitions when it declares the topology.
_TOPOLOGY_S = 60.0
#: Partitions: 16 (the default) keeps two instances within a partition of an even share.
_PARTITIONS = 16


def publish_311(host: str, port: int, messages: list[tuple[str, bytes]]) -> PublishResult:
    """Publish every message at QoS 1 over MQTT 3.1.1 and wait for every PUBACK."""
    done = threading.Event()
    acked = [0]
    lock = threading.Lock()

    def on_publish(*_: object) -> None:
        with lock:
            acked[0] += 1
            if acked[0] >= len(messages):
                done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-cluster-publisher",
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=False,
    )
    client.max_inflight_messages_set(_INFLIGHT)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        started = time.monotonic()
        for index, (topic, payload) in enumerate(messages):
            while index - acked[0] > 30_000:  # paho's message IDs are 16 bits
                time.sleep(0.005)
            info = client.publish(topic, payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                raise RuntimeError(f"publisher: publish() of message {index} failed: {info.rc}")
        if not done.wait(300 + len(messages) / 500):
            raise RuntimeError(f"publisher: {len(messages) - acked[0]} messages never PUBACKed")
        seconds = time.monotonic() - started
    finally:
        client.disconnect()
        client.loop_stop()
    return PublishResult(len(messages), seconds)


class ClusterRun:
    """Measures `instances` ``meshwatch run`` processes on the RabbitMQ cluster's partitions.

    Parameters
    ----------
    bench
        The work dir and the console (its mosquitto is not used).
    cluster
        The running 3-node cluster.
    instances
        How many instances share the partitions.
    """

    def __init__(self, bench: Bench, cluster: RabbitCluster, instances: int) -> None:
        self.bench = bench
        self.cluster = cluster
        self.instances = instances
        self.name = f"{MESHWATCH}, RabbitMQ x3, {instances} instance(s)"
        self.tag = f"cluster{instances}"
        # The console script, as `MeshwatchRun` finds it.
        self.binary = MeshwatchRun(bench).binary

    def _broker_cpu(self) -> float | None:
        """CPU seconds of the three RabbitMQ nodes so far."""
        seconds = [cpu_seconds(pid) for pid in self.cluster.pids()]
        return None if any(s is None for s in seconds) else sum(s or 0.0 for s in seconds)

    def _env(self, data_dir: Path, k: int) -> dict[str, str]:
        nodes = self.cluster.nodes
        order = [nodes[(k + 1 + i) % len(nodes)].amqp_url for i in range(len(nodes))]
        env = {key: v for key, v in os.environ.items() if not key.startswith("MESHWATCH_")}
        env.update(
            MESHWATCH_DATA_DIR=str(data_dir),
            MESHWATCH_MQTT__HOST="127.0.0.1",
            MESHWATCH_MQTT__PORT=str(nodes[0].mqtt_port),
            MESHWATCH_MQTT__PROTOCOL="3.1.1",
            MESHWATCH_MQTT__CLIENT_ID=f"bench-{self.tag}-{k}",
            MESHWATCH_AMQP__URLS=orjson.dumps(order).decode(),
            MESHWATCH_AMQP__PARTITIONS=str(_PARTITIONS),
            MESHWATCH_HTTP__PORT="0",
            MESHWATCH_WORKERS="1",
        )
        return env

    def _declare(self, data_dir: Path, log_path: Path) -> None:
        """Run one instance until it holds partitions (the topology exists), then stop it."""
        proc = spawn_run(self.binary, self._env(data_dir, 0), log_path)
        deadline = time.monotonic() + _TOPOLOGY_S
        try:
            while not re.search(r"partitions held: \[\d", log_path.read_text(errors="replace")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the first instance did not take partitions; {log_path}")
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    def drain(self, workload: Workload) -> Drain:
        """Publish `workload` into the cluster, then time the instances draining it."""
        data_dir = self.bench.workdir / f"{self.tag}-{workload.name}"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        log_path = self.bench.workdir / f"{self.tag}-{workload.name}.log"
        self._declare(data_dir, log_path)
        node = self.cluster.nodes[0]
        published = publish_311("127.0.0.1", node.mqtt_port, workload.messages)
        self.bench.console.log(
            f"{workload.name}: published {published.messages:,} messages into the cluster "
            f"in {published.seconds:.2f} s "
            f"({published.messages / published.seconds:,.0f} msg/s)"
        )
        drain = Drain.of(workload, self.name, published)
        db = data_dir / "meshwatch.db"
        broker_before = self._broker_cpu()
        started = time.monotonic()
        procs = [
            spawn_run(self.binary, self._env(data_dir, k), log_path) for k in range(self.instances)
        ]
        polls: list[float] = []
        try:
            seen = poll_rows(procs[0], db, workload.readings, polls)
        finally:
            cpu = sum(cpu_seconds(p.pid) or 0.0 for p in procs)
            broker_after = self._broker_cpu()
            for p in procs:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(60) for p in procs]
        if not seen.fill(drain, started, workload.readings):
            drain.notes.append(f"exit codes {codes}; log {log_path}")
            return drain
        drain.cpu_s = cpu
        drain.broker_cpu_s = cpu_delta(broker_before, broker_after)
        if any(codes):
            drain.checks.append(f"exit codes {codes} after SIGTERM (expected 0)")
        drain.checks.extend(verify_store(db, data_dir / "deadletters.db", workload))
        return drain
