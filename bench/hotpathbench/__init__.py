"""CPU per reading of the pipeline in process, on the ingest benchmark's two workloads.

Issue 14's measure: the microseconds of CPU the pipeline spends on one reading, without the
broker, so that the pipeline's own cost is what is measured, for single-reading messages and
for messages of 50 readings; for the tree in hand and, with ``--baseline REF``, for a git
ref, in the same run.

Each measurement is one child process (``hotpath_bench.py --child``) with ``PYTHONPATH`` set
to the tree measured: the current checkout, or the ref extracted with ``git archive`` into
the work dir. The workloads come from the current tree (`benchcommon.workloads`), so both
trees get the same bytes. The child builds the pipeline as ``meshwatch run`` does
(`meshwatch.app.build` with the default settings: embedded store, dead letters, scoring,
alerts; no HTTP port, the broker connections not started), in a fresh data dir, and sets the
garbage collector as that tree's ``meshwatch run`` does (`meshwatch.app.tune_gc`, where the
tree has it). Then it hands the workload's messages to `IngestPipeline.prepare` and
`IngestPipeline.commit`, ``--batch-max`` messages at a time (the subscriber's default batch,
which a backlog fills), and times the CPU of the process (`time.process_time`) around those
two calls only: making the `Message` objects, the subscriber's job, is left out, and so is
`IngestPipeline.tick` (once a second, not per reading).

After the timed part, untimed, the child closes the pipeline and checks the store: one
``telemetry`` and one ``anomaly`` row per reading, no dead letter. It digests every row of
the tables the pipeline writes (SHA-256 in primary-key order, random notification ids
masked): the two trees must store exactly the same rows, scores and alerts included.
"""
