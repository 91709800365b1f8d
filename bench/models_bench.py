"""Cost of scoring: one asset model per detector type, and ``meshwatch run`` scoring on/off.

Run ``.venv/bin/python bench/models_bench.py``; ``--quick`` for a smoke run. The code lives in the
``modelsbench`` package beside this script, whose docstring describes the method;
``bench/README.md`` says how to read the tables.
"""

from __future__ import annotations

import sys

from modelsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
