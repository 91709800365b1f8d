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

The entry point is ``bench/ingest_bench.py`` (``make bench``); see ``bench/README.md`` for how to
read the table. The package is named ``ingestbench``, not ``ingest``, because ``bench/`` is on
``sys.path`` when the script runs and must not shadow the real ``ingest`` package.

What it shares with the other benchmarks (the result types, workloads, MQTT sessions,
publisher, store checks and the ``meshwatch run`` driver) lives in ``benchcommon``. Its own
modules:

- ``bare``: the bare paho subscriber, both the child process and its measurement.
- ``cluster``: the same backlog through a 3-node RabbitMQ cluster (``--cluster 1,2``): sensors
  publish to its MQTT plugin, meshwatch instances drain its partition queues (``ingest.amqp``).
- ``report``: the results table, the goals and the JSON file.
- ``cli``: the command line and the run loop.
"""

from __future__ import annotations

__all__: list[str] = []
