"""The fleet health map: one status per asset, reroute advice, and their publication.

- `alerts.health.status`: an asset's entry (`AssetHealth`) and how its alerts decide it;
- `alerts.health.reroute`: where the work of a failing asset can go;
- `alerts.health.broadcast`: the retained ``health`` and ``reroute`` messages, sent after
  the save that holds them;
- `alerts.health.peers`: the health other instances publish (the fleet beyond this one).
"""

from __future__ import annotations

__all__: list[str] = []
