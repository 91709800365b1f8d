"""Cost of alerting: rules and routing per reading, and webhook notifications per second.

Run ``.venv/bin/python bench/alerts.py``; ``--quick`` for a smoke run. The code lives in the
``alertbench`` package beside this script, whose docstring describes the method;
``bench/README.md`` says how to read the tables.

This script is named ``alerts.py``, the name of the package it measures. Python runs it with
``bench/`` at the head of ``sys.path``, where ``alerts.py`` (this file) and ``ingest.py`` would
shadow the real ``alerts`` and ``ingest`` packages; so `_run` takes ``bench/`` off the path,
imports the two real packages, and only then puts ``bench/`` back for ``alertbench``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def _run() -> int:
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    for package in ("alerts", "ingest"):
        importlib.import_module(package)
    sys.path.insert(0, str(here))
    from alertbench.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_run())
