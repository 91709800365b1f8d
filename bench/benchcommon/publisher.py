"""The publisher: puts a whole workload on the broker at QoS 1 while its subscriber is offline.

It publishes in a tight loop from the calling thread while paho's network thread
(``loop_start``) sends, with 1,000 messages in flight, and returns once the broker has
PUBACKed every message: the broker then holds the full backlog for the offline session. The
publisher never runs while a subscriber drains; on 2 cores they would compete for CPU and
the benchmark would measure the publisher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .base import Bench, PublishResult
from .sessions import connect, new_client
from .workloads import Workload

#: Messages in flight, as many as the broker's ``max_inflight_messages 1000``.
PUBLISHER_INFLIGHT = 1000
#: Messages the publisher may have outstanding (queued in paho or in flight) at once.
PUBLISHER_WINDOW = 30_000


def connected_publisher(
    host: str,
    port: int,
    client_id: str,
    inflight: int,
    on_publish: Callable[..., None] | None = None,
) -> mqtt.Client:
    """A QoS 1 publisher with ``inflight`` messages in flight, connected, its loop running.

    paho's own queue is unbounded: the caller's window bounds it. The caller disconnects and
    stops the loop.
    """
    connected = threading.Event()
    client = new_client(client_id)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)  # 0 = unlimited: the caller's window bounds the queue

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        if not rc.is_failure:
            connected.set()

    client.on_connect = on_connect
    if on_publish is not None:
        client.on_publish = on_publish
    connect(client, host, port)
    client.loop_start()
    if not connected.wait(10):
        client.loop_stop()
        raise RuntimeError(f"publisher {client_id or '(bare)'}: no CONNACK within 10 s")
    return client


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
    client = connected_publisher(host, port, "bench-publisher", PUBLISHER_INFLIGHT)
    try:
        started = time.monotonic()
        # a generous bound: 2 min plus 1 ms a message (the 2-core machine does ~12,000 msg/s)
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


def publish_backlog(bench: Bench, client_id: str, workload: Workload) -> PublishResult:
    """Publish ``workload`` for the offline session ``client_id`` and log how fast it went.

    Parameters
    ----------
    bench : Bench
        The broker and the console.
    client_id : str
        The session the backlog is meant for (for the log line only).
    workload : Workload
        The messages.

    Returns
    -------
    PublishResult
        Count and duration.
    """
    result = publish_all(bench.host, bench.port, workload.messages)
    bench.console.log(
        f"{workload.name}: published {result.messages:,} messages for {client_id} "
        f"in {result.seconds:.2f} s ({result.messages / result.seconds:,.0f} msg/s)"
    )
    return result
