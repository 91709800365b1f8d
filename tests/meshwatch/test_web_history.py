"""An asset's hours as the console reads them: downsampled by the embedded store, for real."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from webkit import FakePipeline, client, console, login

from ingest.base import Batch, Point, Reading
from ingest.embedded import EmbeddedStore
from meshwatch.web.charts import COLUMNS
from meshwatch.web.history import EmbeddedHistory

T0 = 1_767_225_600_000_000_000
S = 1_000_000_000
#: Two hours at 1 Hz, the last reading at the window's end.
SECONDS = 7200
SPIKE, DIP = 4321, 1234


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """Two hours of plant-a/cnc-1: a flat temp with one spike and one dip, scores, an alert."""
    store = EmbeddedStore(tmp_path / "meshwatch.db")
    batch = Batch()
    tags = {"site": "plant-a", "asset": "cnc-1", "detector": "default"}
    for n in range(SECONDS):
        temp = 95.0 if n == SPIKE else -5.0 if n == DIP else 40.0
        ts = T0 + n * S
        batch.readings.append(Reading("plant-a", "cnc-1", "cnc-mill", ts, {"temp": temp}))
        warming = n < 600
        score = 0.99 if warming else 0.8 if n == SPIKE else 0.2
        fields = {"score": score, "threshold": 0.5, "anomalous": False, "warming_up": warming}
        batch.points.append(Point("anomaly", tags, fields, ts))
    alert = {"site": "plant-a", "asset": "cnc-1", "rule": "hot", "severity": "critical"}
    for state, n in (("firing", SPIKE), ("resolved", SPIKE + 60)):
        record = {"state": state, "message": "hot", "id": "a1"}
        batch.points.append(Point("alert", alert, record, T0 + n * S))
    store.write(batch)
    yield store
    store.close()


def test_each_series_is_at_most_two_points_a_column_and_keeps_the_spike(
    store: EmbeddedStore,
) -> None:
    """7,200 readings become at most 2 x `COLUMNS` points; the spike and the dip stay."""
    history = EmbeddedHistory(store.path).asset("plant-a", "cnc-1", 2.0, COLUMNS)
    assert (history.start, history.end) == (T0 - S, T0 + (SECONDS - 1) * S)
    (temp,) = history.metrics
    assert temp.name == "temp"
    assert len(temp.points) <= 2 * COLUMNS
    assert len({ts for ts, _ in temp.points}) <= COLUMNS
    assert [ts for ts, _ in temp.points] == sorted(ts for ts, _ in temp.points)
    assert {v for _, v in temp.points} == {95.0, -5.0, 40.0}
    assert all(history.start <= ts <= history.end for ts, _ in temp.points)


def test_the_score_leaves_out_warm_up_and_crosses_the_threshold_at_the_spike(
    store: EmbeddedStore,
) -> None:
    """No 0.99 of the warm-up; the spike's 0.8 over the 0.5 threshold; the episode kept."""
    history = EmbeddedHistory(store.path).asset("plant-a", "cnc-1", 2.0, COLUMNS)
    scores = history.score.points
    assert max(v for _, v in scores) == 0.8
    assert min(ts for ts, _ in scores) >= T0 + 590 * S  # the bucket of the first scored one
    over = [ts for ts, v in scores if v > history.threshold]
    assert len(over) == 1 and over[0] <= T0 + SPIKE * S < over[0] + 10 * S
    assert [(e.start, e.end, e.rule) for e in history.episodes] == [
        (T0 + SPIKE * S, T0 + (SPIKE + 60) * S, "hot")
    ]


def test_an_asset_never_heard_has_no_series(store: EmbeddedStore) -> None:
    """An empty window ending now, no metric, no score."""
    history = EmbeddedHistory(store.path).asset("plant-a", "cnc-9", 6.0, COLUMNS)
    assert (history.metrics, history.score.points, history.episodes) == ([], [], [])


def test_the_asset_page_draws_the_downsampled_charts(tmp_path: Path) -> None:
    """The page has the temp chart and the score chart, each one polyline, the episode shaded."""
    c = console(tmp_path, FakePipeline(set()))
    store = EmbeddedStore(tmp_path / "meshwatch.db")
    readings = [
        Reading("plant-a", "cnc-1", "cnc-mill", T0 + n * S, {"temp": float(n % 100)})
        for n in range(SECONDS)
    ]
    alert = {"site": "plant-a", "asset": "cnc-1", "rule": "hot", "severity": "critical"}
    fired = Point("alert", alert, {"state": "firing", "message": "hot", "id": "a1"}, T0)
    store.write(Batch(readings, [fired]))
    store.close()
    with client(c) as http:
        login(http, "vic")
        page = http.get("/assets/plant-a/cnc-1?hours=2").text
    assert re.findall(r'data-metric="([^"]+)"', page) == ["temp", "score"]
    polyline = re.search(r'<polyline class="line" points="([^"]+)"', page)
    assert polyline is not None
    assert len(polyline.group(1).split()) <= 2 * COLUMNS
    assert page.count('class="episode critical"') == 2
