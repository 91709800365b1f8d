"""The simulators as a load generator: readings/s they publish and replay, against a bare client.

One run, one fresh local mosquitto (`meshwatch.localservers.Mosquitto` on a free port), the
shipped large fleet (2,000 assets at 50 sites, one reading a second each), and the benchmark
section of issue 5:

1. **Generation** (`measure.generation`): `simulators.simulation.Simulation.until`, one
   simulated second a step as the publisher steps, no broker; and the same with each
   reading's payload encoded as the publisher encodes it (``orjson.dumps``).
2. **Publishing** (`measure.simulator`): `simulators.publisher.run` as fast as the broker
   acknowledges (``speed=None``, ``count`` readings), batches of 1, 10 and 50 readings a
   message; next to the bare baseline (`bare.publish`): paho publishing the same messages,
   built beforehand (`workload`), at QoS 1 with the same in-flight limit (1,000) and the same
   window of unacknowledged messages (10,000).
3. **Replay** (`measure.replay`): the same readings, one a message, written to a
   ``.jsonl.gz`` with `simulators.recording.RecordingWriter`, then
   `simulators.replayer.replay` of `read_recording` of it (and, to tell the file's share, of
   the same messages from a list), next to the bare baseline with the replayer's window
   (1,000).
4. **Can it saturate the pipeline?** (`report`): each mode's readings/s against the
   pipeline's drain rates measured by the ingest benchmark.

A subscriber (`subscriber.Counter`: bare paho, QoS 1, acked by paho, counting in its
network thread) drains the broker during every publishing measurement, so mosquitto does not
queue; at the end it must have counted exactly the messages published.

The entry point is ``bench/simulators_bench.py``; ``bench/README.md`` says how to read the
tables. The package is not called ``simulators``, so as not to shadow the real package.

Modules, in the order a run uses them:

- ``workload``: the fleet, the readings, the messages each batch size makes, the recording.
- ``subscriber``: the counting subscriber.
- ``bare``: the bare paho publisher (the baseline).
- ``measure``: the measurements and their results.
- ``report``: the tables, the saturation verdicts, the JSON file.
- ``cli``: the command line and the run loop.
"""

from __future__ import annotations

__all__: list[str] = []
