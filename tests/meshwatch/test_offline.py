"""The pipeline offline: readings in, the alert messages the live pipeline would send out."""

from __future__ import annotations

from ingest.base import Reading
from meshwatch.offline import OfflinePipeline
from meshwatch.settings import Settings

S = 1_000_000_000
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _stream(silent: range) -> list[Reading]:
    """Two conveyors at one site, a reading a second; cnc-2 sends nothing during `silent`."""
    readings = []
    for t in range(1, 701):
        readings.append(Reading("lyon", "cnc-1", "conveyor", T0 + t * S, {"v": 1.0}))
        if t not in silent:
            readings.append(Reading("lyon", "cnc-2", "conveyor", T0 + t * S, {"v": 1.0}))
    return readings


def _judge(readings: list[Reading], batch: int = 1000) -> list[dict[str, object]]:
    with OfflinePipeline(Settings(), batch=batch) as pipeline:
        for r in readings:
            pipeline.feed([r])
        return pipeline.finish().alerts


def test_an_alert_fires_and_resolves_as_alert_messages_with_their_times() -> None:
    """A silent asset: the deadman fires after 5 minutes; its resolution keeps the firing time."""
    firing, resolved = _judge(_stream(range(60, 600)))
    assert (firing["asset"], firing["rule"], firing["state"]) == ("cnc-2", "offline", "firing")
    assert firing["started_at"] == "2026-01-01T00:05:59.000Z"
    assert resolved["id"] == firing["id"]
    assert resolved["state"] == "resolved"
    assert resolved["started_at"] == firing["started_at"]
    assert resolved["resolved_at"] == "2026-01-01T00:10:00.000Z"


def test_the_verdict_depends_on_the_readings_not_on_the_batching() -> None:
    """Batches of 1,000 or of 7 readings give the same alerts (the clock is event time)."""
    stream = _stream(range(60, 600))
    assert _judge(stream) == _judge(stream, batch=7)


def test_the_run_is_counted_readings_assets_and_span() -> None:
    """What the stream held: readings, assets, first and last reading times."""
    with OfflinePipeline(Settings()) as pipeline:
        pipeline.feed(_stream(range(0)))
        judged = pipeline.finish()
    assert (judged.readings, len(judged.assets)) == (1400, 2)
    assert (judged.first, judged.span) == (T0 + S, 699 * S)
