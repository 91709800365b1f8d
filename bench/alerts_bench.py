"""Cost of alerting: rules and routing per reading, and webhook notifications per second.

Run ``.venv/bin/python bench/alerts_bench.py``; ``--quick`` for a smoke run. The code lives in
the ``alertsbench`` package beside this script, whose docstring describes the method;
``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from alertsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
