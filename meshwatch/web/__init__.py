"""The web console (``meshwatch web``): fleet health, alerts and their actions, charts.

Its own process beside the pipelines (docs/design.md §13): it reads the live fleet from the
broker (`fleet`), acts through the broker commands the CLI sends (`actions`), reads history
from the store (`history`, over `ingest.query`) and draws charts on the server (`charts`).
`app` builds the Starlette application from `pages` and `forms`; `auth` and `csrf` guard it;
`serve` runs it with uvicorn.
"""

from __future__ import annotations

__all__: list[str] = []
