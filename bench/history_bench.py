"""Alert history of the large fleet over 24 simulated hours, against issue 15's goal (< 1 s).

Run ``.venv/bin/python bench/history_bench.py`` (about a minute), or with ``--quick`` for a
smoke run. The code lives in the ``historybench`` package beside this script, whose docstring
describes the method; ``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from historybench.cli import main

if __name__ == "__main__":
    sys.exit(main())
