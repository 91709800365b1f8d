"""The bare paho subscriber: the ceiling for a Python subscriber that acks every message.

It is paho-mqtt 2.x on MQTT 5 with ``manual_ack=True``, acking right in ``on_message``, with
TCP_NODELAY, Receive Maximum 1000 and a persistent session; it counts the messages and does
nothing else. It runs as a child process started through the same entry point as the
benchmark (``bench/ingest_bench.py --bare-child``), so that it has a core of its own and pays the
same Python start-up as the script. The child prints one JSON line with ``time.monotonic()``
stamps, which the parent can compare with its own (the clock is shared on Linux).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from benchcommon.base import Bench, Drain, cpu_delta
from benchcommon.publisher import publish_backlog
from benchcommon.sessions import (
    RECEIVE_MAXIMUM,
    SESSION_EXPIRY_S,
    connect,
    create_session,
    leftover_and_drop,
    new_client,
)
from benchcommon.workloads import TOPIC_FILTER, Workload
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: The subscriber name of the bare subscriber, as the table prints it and the goals look it up.
BARE = "bare paho"
BARE_CLIENT_ID = "bench-bare"
#: The script the child runs: the benchmark's own entry point, with ``--bare-child``.
_ENTRY = Path(__file__).resolve().parent.parent / "ingest_bench.py"


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
    client = new_client(BARE_CLIENT_ID, manual_ack=True)

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if rc.is_failure:
            raise RuntimeError(f"broker refused {BARE_CLIENT_ID}: {rc}")
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
    connect(client, host, port, expiry_s=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM)
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


class BarePaho:
    """Measures the bare paho subscriber (`bare_child` in a child process).

    Parameters
    ----------
    bench : Bench
        The broker and the console.
    """

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def drain(self, workload: Workload) -> Drain:
        """Measure the bare paho subscriber on ``workload``."""
        host, port = self.bench.host, self.bench.port
        leftover_and_drop(host, port, BARE_CLIENT_ID, 0.1)  # a session of an earlier run
        create_session(host, port, BARE_CLIENT_ID)
        drain = Drain.of(workload, BARE, publish_backlog(self.bench, BARE_CLIENT_ID, workload))
        n = len(workload.messages)
        timeout = 60 + n / 2000  # a minute plus 0.5 ms a message; it needs ~0.05 ms
        broker_before = self.bench.broker_cpu()
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(_ENTRY), "--bare-child", host, str(port), str(n), str(timeout)],
            capture_output=True,
            text=True,
            check=False,
        )
        broker_after = self.bench.broker_cpu()
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
        # the first message starts the clock: the window holds the n - 1 after it
        drain.steady_readings = (n - 1) * workload.batch
        drain.cpu_s = report["cpu"]
        drain.broker_cpu_s = cpu_delta(broker_before, broker_after)
        if report["count"] != n:
            drain.notes.append(f"bare counted {report['count']:,} messages (> {n:,})")
        leftover = leftover_and_drop(host, port, BARE_CLIENT_ID, 0.2)
        if leftover:
            drain.notes.append(f"bare left {leftover} messages unacked")
        return drain
