"""The health map a pipeline saved in its data dir: ``meshwatch status --local``.

Read from the alert state on disk, with no broker: after a demo, or while the broker is down.
The messages are the retained ``<prefix>/health/{site}/{asset}`` ones the pipeline publishes
(docs/design.md §3), so ``status`` prints both the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshwatch.datadir import state_files


def saved_health(data_dir: Path) -> list[dict[str, Any]]:
    """The health map a pipeline saved in its data dir, as the retained messages carry it.

    With workers, every worker's part of it; empty when no pipeline saved one there.
    """
    found: list[dict[str, Any]] = []
    paths = state_files(data_dir, "alerts.db")
    if not paths:
        return found
    # Imported here: the alert state and the health model pull in the rules, which a data
    # dir without a saved map does not need.
    from alerts.health.status import AssetHealth
    from alerts.state import AlertState

    for path in paths:
        state = AlertState(path)
        try:
            saved = state.load().health
        finally:
            state.close()
        found += [AssetHealth.from_state(data).payload() for data in saved.values()]
    return found
