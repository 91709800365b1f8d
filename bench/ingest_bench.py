"""Ingest throughput: ``meshwatch run`` against a bare paho QoS 1 subscriber, same backlog.

Run ``.venv/bin/python bench/ingest_bench.py`` (or ``make bench``); ``--quick`` for a smoke run.
The code lives in the ``ingestbench`` package beside this script, whose docstring describes
the method; ``bench/README.md`` says how to read the table.
"""

from __future__ import annotations

import sys

from ingestbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
