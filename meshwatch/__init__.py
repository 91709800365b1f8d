"""meshwatch: the wiring of the pipeline: settings, assembly, the CLI and the HTTP endpoint.

Domain logic lives in `ingest`, `models`, `alerts` and `simulators`; this package builds their
objects in data-flow order and hands them to each other.
"""

from __future__ import annotations

__all__: list[str] = []
