"""CPU per reading of the pipeline in process, single-reading and batched, against a git ref.

Run ``.venv/bin/python bench/hotpath_bench.py --baseline main``; ``--quick`` for a smoke run.
The code lives in the ``hotpathbench`` package beside this script, whose docstring describes
the method; ``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from hotpathbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
