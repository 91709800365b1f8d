"""Reading the store back (`ingest.query`): the embedded store for real, InfluxDB's Flux as text.

InfluxDB cannot run here (VictoriaMetrics answers no Flux), so the Flux each query sends is
checked here, and ``tests/meshwatch/test_influxdb.py`` reads a real InfluxDB when one is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.base import Batch, Point, Reading
from ingest.embedded import EmbeddedStore
from ingest.embeddedreader import EmbeddedReader
from ingest.influxreader import flux, row_of

T0 = 1_767_225_600_000_000_000
S = 1_000_000_000


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[EmbeddedReader]:
    path = tmp_path / "meshwatch.db"
    store = EmbeddedStore(path)
    readings = [
        Reading("lyon", asset, "oven", T0 + n * S, {"temp": float(n)})
        for n in range(5)
        for asset in ("oven-1", "oven-2")
    ]
    action = Point(
        "alert_action",
        {"site": "", "asset": "", "rule": "", "action": "silence"},
        {"id": "s1", "by": "ana"},
        T0,
    )
    store.write(Batch(readings, [action]))
    yield EmbeddedReader(path)
    store.close()


def test_rows_in_a_time_range_oldest_first_with_tags_and_fields(reader: EmbeddedReader) -> None:
    """``start <= ts < stop``, every tag, the fields as written."""
    rows = reader.rows("telemetry", start=T0 + S, stop=T0 + 3 * S, tags={"asset": "oven-1"})
    assert [(r.ts, dict(r.tags), dict(r.fields)) for r in rows] == [
        (T0 + S, {"site": "lyon", "asset": "oven-1", "kind": "oven"}, {"temp": 1.0}),
        (T0 + 2 * S, {"site": "lyon", "asset": "oven-1", "kind": "oven"}, {"temp": 2.0}),
    ]


def test_newest_first_with_a_limit_gives_the_latest_rows(reader: EmbeddedReader) -> None:
    """The two newest readings of the fleet."""
    rows = reader.rows("telemetry", start=0, newest_first=True, limit=2)
    assert [r.ts for r in rows] == [T0 + 4 * S, T0 + 4 * S]


def test_an_empty_tag_selects_the_points_stored_without_it(reader: EmbeddedReader) -> None:
    """Silences are stored without site and asset: ``site=''`` finds them."""
    rows = reader.rows("alert_action", start=0, tags={"site": "", "action": "silence"})
    assert [r.fields["id"] for r in rows] == ["s1"]


def test_latest_is_the_newest_time_of_the_series(reader: EmbeddedReader) -> None:
    """The asset's newest reading; None for an asset never heard."""
    assert reader.latest("telemetry", {"site": "lyon", "asset": "oven-2"}) == T0 + 4 * S
    assert reader.latest("telemetry", {"site": "lyon", "asset": "oven-9"}) is None


def test_a_store_not_yet_created_reads_as_empty(tmp_path: Path) -> None:
    """Before the pipeline's first commit there is nothing, and no file is created."""
    missing = EmbeddedReader(tmp_path / "meshwatch.db")
    assert missing.rows("alert", start=0) == []
    assert missing.latest("telemetry", {"site": "s"}) is None
    assert not (tmp_path / "meshwatch.db").exists()


@pytest.mark.parametrize(
    ("measurement", "tags", "problem"),
    [("alerts", {}, "unknown measurement 'alerts'"), ("alert", {"line": "3"}, "no tag 'line'")],
    ids=["measurement", "tag"],
)
def test_an_unknown_measurement_or_tag_is_refused(
    reader: EmbeddedReader, measurement: str, tags: dict[str, str], problem: str
) -> None:
    """A `ValueError` naming it, not an SQL error."""
    with pytest.raises(ValueError, match=problem):
        reader.rows(measurement, start=0, tags=tags)


def test_flux_selects_the_range_in_ns_and_escapes_tag_values() -> None:
    """Times as ns, a quote in a value escaped, an empty tag as its absence, newest first."""
    query = flux(
        "meshwatch",
        "alert_action",
        start=T0,
        tags={"site": 'ly"on', "asset": ""},
        newest_first=True,
    )
    assert f"range(start: time(v: {T0}))" in query
    assert 'r.site == "ly\\"on" and not exists r.asset' in query
    assert 'sort(columns: ["_time"], desc: true)' in query
    assert "limit(" not in query


def test_a_pivoted_flux_row_splits_into_tags_and_fields() -> None:
    """Flux's own columns dropped, tags completed, null fields left out."""
    values = {
        "result": "_result",
        "table": 0,
        "_start": None,
        "_stop": None,
        "_time": None,
        "_measurement": "notification",
        "site": "lyon",
        "asset": "oven-1",
        "receiver": "mqtt",
        "id": "e1",
        "alerts": 1.0,
        "notification": None,
    }
    row = row_of("notification", values, T0)
    assert dict(row.tags) == {
        "site": "lyon",
        "asset": "oven-1",
        "rule": "",
        "receiver": "mqtt",
        "state": "",
    }
    assert dict(row.fields) == {"id": "e1", "alerts": 1.0}
