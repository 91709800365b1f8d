"""Real local servers (mosquitto, VictoriaMetrics) for tests, the demo and benchmarks.

Each server runs as a child process on a free port of 127.0.0.1, keeps its configuration, log
and data in a working directory of its own, and is stopped by the caller (or by leaving its
``with`` block). Nothing here talks to a server the user already runs.

The settings follow what was measured on this stack (``docs/design.md`` §12): mosquitto is started
with an unlimited queue (``max_queued_messages 0``), persistence saved every second and 1,000
messages in flight, because its defaults silently drop QoS 1 messages; VictoriaMetrics keeps
every timestamp (``-retentionPeriod=100y``) and drops exact duplicates
(``-dedup.minScrapeInterval=1ms``).

Modules, one concept each:

- ``errors``: `ServerError` and `MissingBinaryError`.
- ``process``: a server as a child process; `free_port`, `find_binary`.
- ``base``: what every server shares (address, ``with``); a child process adds kill, restart.
- ``mosquitto``: `Mosquitto` and `make_password_file`.
- ``victoriametrics``: `VictoriaMetrics` and `ExportedSeries`.
- ``rabbitmq``: `RabbitCluster`, RabbitMQ nodes clustered, with MQTT (``ingest.amqp``'s engine).
- ``inprocess``: `InProcessBroker`, amqtt in a thread: the demo's broker without mosquitto.
- ``tls``: a throwaway CA: `TlsFiles`, `make_test_certificates`, `make_client_certificate`.
"""

from __future__ import annotations

from meshwatch.localservers.errors import MissingBinaryError, ServerError
from meshwatch.localservers.mosquitto import Mosquitto, make_password_file
from meshwatch.localservers.process import find_binary, free_port
from meshwatch.localservers.rabbitmq import RabbitCluster, RabbitNode
from meshwatch.localservers.tls import TlsFiles, make_client_certificate, make_test_certificates
from meshwatch.localservers.victoriametrics import ExportedSeries, VictoriaMetrics

__all__ = [
    "ExportedSeries",
    "MissingBinaryError",
    "Mosquitto",
    "RabbitCluster",
    "RabbitNode",
    "ServerError",
    "TlsFiles",
    "VictoriaMetrics",
    "find_binary",
    "free_port",
    "make_client_certificate",
    "make_password_file",
    "make_test_certificates",
]
