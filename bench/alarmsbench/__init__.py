"""The alarm report of the large fleet over a simulated day, judged offline by the live code.

Issue 11's benchmark: the shipped large fleet (2,000 assets at 50 sites, one reading a
second each, 20 scheduled faults) with the simulator's realistic duty cycles (jobs, changeovers
and idle spells of tens of minutes), for at least 24 simulated hours, with the default
settings (default warm-up), and no broker:

1. **Readings** (`fleet`): `simulators.simulation.Simulation` of a part of the fleet's sites,
   one simulated second at a time, each reading as ingest would decode it
   (`ingest.base.Reading`).
2. **Judging** (`worker`): `meshwatch.offline.OfflinePipeline`, the one code path that
   ``meshwatch evaluate RUN --labels`` uses too: `models.scoring.ScoringProcessor` over
   `models.registry.ModelRegistry`, then `alerts.processor.AlertProcessor` over
   `alerts.engine.AlertEngine`, in batches of 1,000 readings, the alert state committed
   after each. The sites are split over worker processes (one per core by default): an
   asset's model and alerts depend only on its own readings, and the site-wide alerts
   (deadman of a whole site) and the reroute advice only on its site's.
3. **The report** (`report`): the parts' alert messages together, against the simulator's
   ground truth, with `meshwatch.alarmreport` (faults caught and their delay, false alarms
   per machine-hour, alarms per 10 minutes against EEMUA 191 and ISA-18.2, chattering and
   stale alarms), and the issue's goals (`report.goals`).

The entry point is ``bench/alarms_bench.py``; ``bench/README.md`` says how to read the
tables. The package is not called ``alarms`` or ``alerts``, so as not to shadow anything.

Modules, in the order a run uses them:

- ``fleet``: the fleet, the sites of a quick run, the parts, the readings.
- ``worker``: one part judged in its own process, with progress messages.
- ``report``: the goals, the timing table and the JSON file.
- ``cli``: the command line, the processes and the progress display.
"""

from __future__ import annotations

__all__: list[str] = []
