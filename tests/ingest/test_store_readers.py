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
from ingest.influxreader import extremes_of, flux, flux_extremes, row_of
from ingest.query import Buckets, Extremes, bucket_width

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


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[tuple[EmbeddedStore, EmbeddedReader]]:
    """An empty store and its reader: 1 Hz readings are written by each test."""
    path = tmp_path / "meshwatch.db"
    store = EmbeddedStore(path)
    yield store, EmbeddedReader(path)
    store.close()


def _readings(values: list[float]) -> Batch:
    """One reading a second from T0, metric ``temp`` (and ``rpm``, constant)."""
    return Batch(
        [
            Reading("lyon", "oven-1", "oven", T0 + n * S, {"temp": v, "rpm": 1500.0})
            for n, v in enumerate(values)
        ]
    )


def test_extremes_keep_a_spike_and_a_dip_shorter_than_a_bucket(
    empty_store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """One reading of 1,000 sticks out: its bucket's high (or low) is that reading."""
    store, reader = empty_store
    values = [20.0] * 1000
    values[517], values[203] = 95.0, -40.0
    store.write(_readings(values))
    found = reader.extremes(Buckets("telemetry", T0, T0 + 1000 * S, 10, {"asset": "oven-1"}))
    temp = [(e.ts, e.low, e.high) for e in found if e.field == "temp"]
    assert temp == [
        (T0 + k * 100 * S, -40.0 if k == 2 else 20.0, 95.0 if k == 5 else 20.0) for k in range(10)
    ]
    assert [e.field for e in found] == ["rpm"] * 10 + ["temp"] * 10  # by field, then time


@pytest.mark.parametrize("buckets", [1, 3, 7, 752, 5000])
def test_extremes_give_at_most_the_buckets_asked_for_within_the_range(
    empty_store: tuple[EmbeddedStore, EmbeddedReader], buckets: int
) -> None:
    """The newest point (``stop - 1``) is in the last bucket; more buckets than points: each."""
    store, reader = empty_store
    store.write(_readings([float(n % 13) for n in range(2000)]))
    stop = T0 + 1999 * S + 1
    found = reader.extremes(Buckets("telemetry", T0, stop, buckets, field="temp"))
    assert len(found) == min(buckets, 2000)
    assert len({e.ts for e in found}) == len(found)
    assert all(T0 <= e.ts < stop for e in found)
    assert min(e.low for e in found) == 0.0 and max(e.high for e in found) == 12.0


@pytest.mark.parametrize(
    ("start", "stop"), [(T0 + 100 * S, T0 + 200 * S), (T0, T0)], ids=["no points", "empty"]
)
def test_extremes_of_a_range_without_points_are_none(
    empty_store: tuple[EmbeddedStore, EmbeddedReader], start: int, stop: int
) -> None:
    """Readings before the range, or a range of no time, give no bucket at all."""
    store, reader = empty_store
    store.write(_readings([1.0] * 10))
    assert reader.extremes(Buckets("telemetry", start, stop, 10)) == []


def test_extremes_of_a_store_not_yet_created_are_none(tmp_path: Path) -> None:
    """The console before the pipeline's first commit: nothing, and no file created."""
    missing = EmbeddedReader(tmp_path / "meshwatch.db")
    assert missing.extremes(Buckets("telemetry", 0, 10, 2)) == []
    assert not (tmp_path / "meshwatch.db").exists()


def test_extremes_of_one_field_leave_out_points_where_unless_is_true(
    empty_store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """Scores of a model warming up are not counted; other fields and booleans are not given."""
    store, reader = empty_store
    tags = {"site": "lyon", "asset": "oven-1", "detector": "default"}
    points = [
        Point(
            "anomaly",
            tags,
            {"score": 0.99 if n < 5 else 0.1 * n, "threshold": 0.5, "warming_up": n < 5},
            T0 + n * S,
        )
        for n in range(10)
    ]
    store.write(Batch([], points))
    found = reader.extremes(Buckets("anomaly", T0, T0 + 10 * S, 1, None, "score", "warming_up"))
    assert [(e.field, e.ts, e.low, round(e.high, 6)) for e in found] == [("score", T0, 0.5, 0.9)]
    every = reader.extremes(Buckets("anomaly", T0, T0 + 10 * S, 1))
    assert [e.field for e in every] == ["score", "threshold"]  # warming_up: a boolean


def test_flux_extremes_window_the_range_from_its_start() -> None:
    """Windows as wide as `bucket_width`, offset to start at `start`, min and max results."""
    query = flux_extremes("meshwatch", Buckets("telemetry", T0, T0 + 3600 * S, 752, {"site": "x"}))
    width = bucket_width(T0, T0 + 3600 * S, 752)
    assert f"every: {width}ns, offset: {T0 % width}ns, fn: min" in query
    assert f"every: {width}ns, offset: {T0 % width}ns, fn: max" in query
    assert 'timeSrc: "_start"' in query and "createEmpty: false" in query
    assert 'yield(name: "low")' in query and 'yield(name: "high")' in query
    assert "pivot(" not in query  # every field its own series: no need


def test_flux_extremes_refuse_unless_without_a_field() -> None:
    """Flux sees one field a row: leaving points out by another field needs a pivot on one."""
    with pytest.raises(ValueError, match="unless needs a field"):
        flux_extremes("b", Buckets("anomaly", 0, 10, 2, unless="warming_up"))


def test_flux_low_and_high_records_pair_into_extremes() -> None:
    """Paired by field and window time; a window with one of the two is left out."""
    records = [
        ({"result": "low", "_field": "temp", "_value": 1.0}, T0),
        ({"result": "high", "_field": "temp", "_value": 9.0}, T0),
        ({"result": "high", "_field": "rpm", "_value": 3}, T0),
        ({"result": "low", "_field": "rpm", "_value": 2}, T0),
        ({"result": "low", "_field": "temp", "_value": 4.0}, T0 + S),
    ]
    assert extremes_of(records) == [
        Extremes("rpm", T0, 2.0, 3.0),
        Extremes("temp", T0, 1.0, 9.0),
    ]
