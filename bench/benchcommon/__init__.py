"""What the benchmarks share: the run's work dir and environment, MQTT clients, reports.

It began as the ingest benchmark's machinery, which the models benchmark reuses whole to
drive ``meshwatch run``: one mosquitto, deterministic workloads published at QoS 1 while the
subscriber is offline, and a drain timed by polling the store. It is named ``benchcommon``,
not ``common``, because ``bench/`` is on ``sys.path`` when an entry script runs and must not
shadow meshwatch's own ``common`` package.

Modules:

- ``runs``: the work dir, a note of the machine, and the options every benchmark takes.
- ``report``: the wide console, table columns, goal tables and the JSON file.
- ``base``: `Drain` and `PublishResult` (the results), `Bench` (the broker and work dir every
  measurement shares), the `Subscriber` protocol, and CPU time from ``/proc``.
- ``workloads``: the messages of a workload and the readings each asset should end up with.
- ``sessions``: MQTT 5 clients with TCP_NODELAY, and persistent sessions (create, count what
  is left, delete).
- ``publisher``: publishes a backlog at QoS 1 and waits for every PUBACK.
- ``store``: reads meshwatch's SQLite store from outside: the row-count poll and the checks.
- ``meshwatch_run``: drives ``meshwatch run`` as a subprocess and measures its drain.
"""

from __future__ import annotations

__all__: list[str] = []
