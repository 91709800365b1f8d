"""The alarm report of the large fleet over a simulated day, against issue 11's goals.

Run ``.venv/bin/python bench/alarms_bench.py`` (a long run: see ``bench/README.md``);
``--sites 5 --hours 2`` for a quick one. The code lives in the ``alarmsbench`` package beside
this script, whose docstring describes the method; ``bench/README.md`` says how to read the
tables.
"""

from __future__ import annotations

import sys

from alarmsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
