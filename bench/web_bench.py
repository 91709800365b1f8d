"""The web console against issue 13's goals: page render times, live-update latency, memory.

Run ``.venv/bin/python bench/web_bench.py`` (about a minute), or with ``--quick`` for a smoke
run. The code lives in the ``webbench`` package beside this script, whose docstring
describes the method; ``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from webbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
