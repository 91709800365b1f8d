"""Alert history: what happened to each alert, read back from the store on demand.

The store keeps an episode's transitions (``alert``), people's actions on it and on silences
(``alert_action``) and the notifications each receiver was sent (``notification``):
`records` builds those points, `pending` keeps an action's point in ``alerts.db`` until a
batch stores it, and `ledger` hands points to the batches. `episodes` rebuilds episodes from
the rows (`ingest.query.StoreReader`), `summary` counts them per asset and per rule, and
`query` answers the ``history`` command (``meshwatch alerts history``).
"""

from __future__ import annotations

__all__: list[str] = []
