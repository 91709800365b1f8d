"""Cost of alerting: rule evaluation and routing per reading, and webhook notifications/s.

Two parts, in one run (the benchmark section of issue 4):

1. **Evaluation** (`evaluation`): `alerts.engine.AlertEngine` with 20 rules and 10 routes
   (`config`) over a seeded fleet of 2,000 assets at 50 sites (`fleet`: mostly normal
   readings, a few percent failing, some going silent, so alerts fire and resolve), fed
   1,000 readings a batch, then (untimed) the same fleet recovered until every alert has
   resolved, so the checks can hold each case to ending what it fired (the default rules keep
   an alert firing 5 minutes, longer than a run); µs per reading of ``observe``, of the same
   engine with no rules (the baseline), with the shipped defaults, with reroute advice off, and of
   `alerts.processor.AlertProcessor.process`, the call the pipeline makes, with the
   observations built from ingest readings and scoring's points. Each is compared with the
   pipeline's own time per reading; the costliest is profiled (`hotspots`) when it is over
   3 µs.
2. **Delivery** (`delivery`): notifications/s through `alerts.receivers.webhook.WebhookReceiver`
   to a local HTTP endpoint (`endpoint`, a child process answering 204), driven by
   `alerts.courier.Courier` from the durable outbox (`alerts.outbox`), next to the receiver's
   own ``notify`` loop (the baseline) and a plain httpx loop (the floor).

The entry point is ``bench/alerts_bench.py``; ``bench/README.md`` says how to read the
tables. The package is not called ``alerts``, so as not to shadow the real package.

Modules, in the order a run uses them:

- ``config``: the 20 rules and the 10-route tree, as YAML, loaded by `alerts.settings.load`.
- ``fleet``: the synthetic readings and verdicts, and the recovered fleet after the run.
- ``evaluation``: the cases, one engine each, timed per batch.
- ``hotspots``: one profiled run of the pipeline case.
- ``endpoint``: the HTTP endpoint process.
- ``delivery``: the three ways of delivering, timed.
- ``report``: the tables, the goal and the JSON file.
- ``cli``: the command line and the run loop.
"""

from __future__ import annotations

__all__: list[str] = []
