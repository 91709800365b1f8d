"""The ``history`` command: the pipeline reads its own store and answers (read-only).

``meshwatch alerts history`` asks any running pipeline through the broker, like ``status``
does, so it works from any machine that reaches the broker; the pipeline reads the store it
writes (`ingest.query.StoreReader`) and answers with the episodes of a window that ends at
its fleet clock's now (event time: a replayed day is asked about in its own time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.engine import AlertEngine
from alerts.errors import CommandError
from alerts.history import query
from alerts.matchers import Matcher
from ingest.errors import StoreReadError
from ingest.query import StoreReader


class HistoryDesk:
    """Answers ``history`` from the store the pipeline writes.

    Parameters
    ----------
    engine
        The alert engine: its fleet clock and the alerts firing now.
    reader
        The store; None when the pipeline has none to read (history is then refused).
    """

    def __init__(self, engine: AlertEngine, reader: StoreReader | None) -> None:
        self.engine = engine
        self.reader = reader

    def answer(
        self, matchers: Sequence[Matcher], since: float, limit: int, with_summary: bool
    ) -> dict[str, Any]:
        """The reply's fields (`alerts.history.query.answer`); `CommandError` if unreadable."""
        if self.reader is None:
            raise CommandError("this pipeline has no store to read history from")
        engine = self.engine
        with engine.lock:
            now = engine.clock.now()
            firing = engine.open_alerts()
        try:
            return query.answer(
                self.reader,
                now=now,
                since=since,
                matchers=matchers,
                limit=limit,
                with_summary=with_summary,
                open_alerts=firing,
            )
        except StoreReadError as exc:
            raise CommandError(str(exc)) from None
