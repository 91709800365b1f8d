"""The simulators as a load generator: readings/s published and replayed, against bare paho.

Run ``.venv/bin/python bench/simulators_bench.py``; ``--quick`` for a smoke run. The code lives
in the ``simulatorsbench`` package beside this script, whose docstring describes the method;
``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from simulatorsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
