"""Cost of scoring: one asset model per detector type, and the pipeline with scoring on and off.

Two parts, in one run:

1. **One asset model** (`cost`): for each detector type as a one-detector profile, and the
   shipped default profile, with readings of 4 and 8 metrics (`readings`: synthetic,
   correlated, seeded), the time of `models.asset.AssetModel.process` (score + learn) per
   reading after the warm-up (median over fresh models, and p99), the warm-up's own time,
   the pickled size of one model, and the memory one model holds (tracemalloc over many).
2. **The pipeline** (`pipeline`): ``meshwatch run`` draining the same QoS 1 backlog with
   scoring off (``MESHWATCH_MODELS__ENABLED=false``) and on, with the ingest benchmark's
   broker, workloads, publisher and driver (`benchcommon`), on single-reading messages and
   on 50-reading batches; readings/s of each and the ratio on/off.

The goals of the issue apply to the default profile: at most 30 µs per reading and at most
32 KiB per asset model.

The entry point is ``bench/models_bench.py``; ``bench/README.md`` says how to read the tables.
The package is not called ``models`` because ``bench/`` is on ``sys.path`` when the script
runs and would shadow the real ``models`` package.

Modules, in the order a run uses them:

- ``readings``: the synthetic readings.
- ``cases``: the profiles measured.
- ``cost``: time, size and memory of one model.
- ``pipeline``: scoring on against off in ``meshwatch run``.
- ``report``: the tables, the goals and the JSON file.
- ``cli``: the command line and the run loop.
"""

from __future__ import annotations

__all__: list[str] = []
