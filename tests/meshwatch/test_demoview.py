"""The demo's live view: health table, latest alerts and reroute advice as a rich renderable."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from meshwatch.demoview import render


class _Seen:
    """What a FleetWatcher would have collected (the view only reads `snapshot`)."""

    def __init__(self, health: list[dict[str, Any]], alerts: list[dict[str, Any]], advice):
        self._snapshot = (health, alerts, advice)

    def snapshot(self):
        return self._snapshot


def _text(watcher: _Seen) -> str:
    console = Console(width=160, record=True)
    console.print(render(watcher, "1,000 readings stored"))  # type: ignore[arg-type]
    return console.export_text()


def test_the_view_shows_health_alerts_and_advice() -> None:
    """Each asset's status, the newest alert first, and where a failing asset's work can go."""
    health = [
        {"site": "lyon", "asset": "cnc-1", "kind": "cnc-mill", "status": "critical",
         "score": 0.93, "since": "2026-01-01T00:40:00.000Z"},
        {"site": "berlin", "asset": "cnc-1", "kind": "cnc-mill", "status": "ok",
         "score": 0.1, "since": "2026-01-01T00:00:00.000Z"},
    ]  # fmt: skip
    alerts = [
        {"state": "firing", "severity": "critical", "site": "lyon", "asset": "cnc-1",
         "rule": "anomaly_severe", "message": "cnc-1 at lyon is failing"},
    ]  # fmt: skip
    advice = [{"site": "lyon", "asset": "cnc-1", "status": "critical",
               "candidates": [{"site": "berlin", "asset": "cnc-1"}]}]  # fmt: skip
    text = _text(_Seen(health, alerts, advice))
    assert text.index("berlin") < text.index("lyon")  # sorted by site
    assert "critical" in text and "0.93" in text and "00:40:00" in text
    assert "firing   critical lyon/cnc-1 anomaly_severe: cnc-1 at lyon is failing" in text
    assert "lyon/cnc-1 (critical) -> berlin/cnc-1" in text
    assert "1,000 readings stored" in text


def test_an_empty_fleet_says_so() -> None:
    """Before any message: no alerts yet, no advice."""
    text = _text(_Seen([], [], []))
    assert "none yet" in text and "none" in text
