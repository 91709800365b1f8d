"""Unit tests of the embedded SQLite store (`ingest.embedded`), on real files in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.base import Batch, Point, Reading
from ingest.embedded import EmbeddedStore
from ingest.errors import StoreError

T = 1_795_521_600_000_000_000


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Return where the store's database file goes."""
    return tmp_path / "meshwatch.db"


@pytest.fixture
def store(path: Path) -> Iterator[EmbeddedStore]:
    """Yield a fresh embedded store, closed afterwards."""
    s = EmbeddedStore(path)
    yield s
    s.close()


def _anomaly(ts: int = T, **fields: object) -> Point:
    values = {
        "score": 0.97,
        "threshold": 0.9,
        "anomalous": True,
        "top_metric": "vibration_rms",
        "warming_up": False,
    }
    values.update(fields)
    return Point("anomaly", {"site": "s1", "asset": "a1", "detector": "hst"}, values, ts)


def _alert(ts: int = T) -> Point:
    return Point(
        "alert",
        {"site": "s1", "asset": "a1", "rule": "anomaly", "severity": "critical"},
        {"state": "firing", "value": 0.97, "message": "score 0.97 above 0.9"},
        ts,
    )


def test_readings_are_stored_and_read_back(store: EmbeddedStore) -> None:
    """A written reading reads back with its tags, time and metrics."""
    store.write(Batch([Reading("s1", "a1", "cnc-mill", T, {"t": 61.2, "rpm": 1200.0})]))
    assert list(store.rows("telemetry")) == [
        {
            "site": "s1",
            "asset": "a1",
            "kind": "cnc-mill",
            "ts": T,
            "fields": {"t": 61.2, "rpm": 1200.0},
        }
    ]


def test_reading_without_kind_has_an_empty_kind_tag(store: EmbeddedStore) -> None:
    """A reading without a kind is stored with kind ''."""
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 1.0})]))
    assert [row["kind"] for row in store.rows("telemetry")] == [""]


def test_floats_read_back_exactly(store: EmbeddedStore) -> None:
    """Metric floats survive the JSON round trip bit for bit, including on a merge."""
    values = {"a": 0.1 + 0.2, "b": 1e-7, "c": 1e20, "d": 5e-324, "e": 1.7976931348623157e308}
    reading = Reading("s1", "a1", None, T, values)
    store.write(Batch([reading]))
    store.write(Batch([reading]))
    (row,) = store.rows("telemetry")
    assert row["fields"] == values


def test_rows_filter_by_tags_oldest_first(store: EmbeddedStore) -> None:
    """rows() keeps only the given tag values and orders by time."""
    store.write(
        Batch(
            [
                Reading("s1", "a1", None, T + 2, {"t": 2.0}),
                Reading("s1", "a2", None, T + 1, {"t": 9.0}),
                Reading("s1", "a1", None, T + 1, {"t": 1.0}),
                Reading("s2", "a1", None, T + 3, {"t": 8.0}),
            ]
        )
    )
    rows = store.rows("telemetry", site="s1", asset="a1")
    assert [(r["ts"], r["fields"]) for r in rows] == [(T + 1, {"t": 1.0}), (T + 2, {"t": 2.0})]


def test_rows_refuse_an_unknown_tag(store: EmbeddedStore) -> None:
    """Filtering by a tag the measurement does not have is an error naming it."""
    with pytest.raises(ValueError, match="'detector'"):
        list(store.rows("telemetry", detector="hst"))


def test_unknown_measurement_cannot_be_read(store: EmbeddedStore) -> None:
    """Counting an unknown measurement is an error naming it."""
    with pytest.raises(ValueError, match="'bogus'"):
        store.count("bogus")


def test_redelivered_reading_leaves_row_count_unchanged(store: EmbeddedStore) -> None:
    """Writing the same (site, asset, kind, ts) again stores nothing twice."""
    reading = Reading("s1", "a1", "cnc-mill", T, {"t": 61.2})
    store.write(Batch([reading]))
    store.write(Batch([reading, reading]))
    assert store.count("telemetry") == 1
    assert [row["fields"] for row in store.rows("telemetry")] == [{"t": 61.2}]


def test_same_series_and_time_merges_fields(store: EmbeddedStore) -> None:
    """Different metrics at the same series and time merge, later values winning (InfluxDB)."""
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 1.0, "rpm": 10.0})]))
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 2.0, "vib": 0.4})]))
    assert [row["fields"] for row in store.rows("telemetry")] == [
        {"t": 2.0, "rpm": 10.0, "vib": 0.4}
    ]


def test_different_time_is_a_new_row(store: EmbeddedStore) -> None:
    """The same series one nanosecond later is another row."""
    store.write(Batch([Reading("s1", "a1", None, t, {"t": 1.0}) for t in (T, T + 1)]))
    assert store.count("telemetry") == 2


def test_anomaly_points_go_to_the_anomaly_table_with_its_tags(store: EmbeddedStore) -> None:
    """An anomaly point is stored under site, asset and detector with all its fields."""
    store.write(Batch(points=[_anomaly()]))
    assert list(store.rows("anomaly")) == [
        {
            "site": "s1",
            "asset": "a1",
            "detector": "hst",
            "ts": T,
            "fields": {
                "score": 0.97,
                "threshold": 0.9,
                "anomalous": True,
                "top_metric": "vibration_rms",
                "warming_up": False,
            },
        }
    ]
    assert (store.count("telemetry"), store.count("alert")) == (0, 0)


def test_alert_points_go_to_the_alert_table_with_its_tags(store: EmbeddedStore) -> None:
    """An alert point is stored under site, asset, rule and severity with all its fields."""
    store.write(Batch(points=[_alert()]))
    assert list(store.rows("alert", rule="anomaly", severity="critical")) == [
        {
            "site": "s1",
            "asset": "a1",
            "rule": "anomaly",
            "severity": "critical",
            "ts": T,
            "fields": {"state": "firing", "value": 0.97, "message": "score 0.97 above 0.9"},
        }
    ]


def test_point_missing_a_tag_stores_it_empty(store: EmbeddedStore) -> None:
    """A point without one of its measurement's tags stores that tag as ''."""
    store.write(Batch(points=[Point("anomaly", {"site": "s1", "asset": "a1"}, {"score": 0.1}, T)]))
    assert [row["detector"] for row in store.rows("anomaly")] == [""]


def test_reading_and_its_points_commit_together(store: EmbeddedStore) -> None:
    """One batch writes its readings and points into their tables at once."""
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 1.0})], [_anomaly(), _alert()]))
    assert [store.count(m) for m in ("telemetry", "anomaly", "alert")] == [1, 1, 1]


def test_failed_transaction_commits_nothing_of_the_batch(store: EmbeddedStore) -> None:
    """A row failing inside the transaction rolls back the readings written before it."""
    good = [Reading("s1", "a1", None, T + i, {"t": float(i)}) for i in range(3)]
    broken = Point("anomaly", {"site": "s1"}, {"score": 0.5}, None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="NOT NULL"):
        store.write(Batch(good, [broken]))
    assert store.count("telemetry") == 0


def test_store_stays_usable_after_a_failed_transaction(store: EmbeddedStore) -> None:
    """After a rolled-back batch, the next batch commits normally."""
    broken = Point("anomaly", {"site": "s1"}, {"score": 0.5}, None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write(Batch([Reading("s1", "a1", None, T, {"t": 1.0})], [broken]))
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 2.0})]))
    assert [row["fields"] for row in store.rows("telemetry")] == [{"t": 2.0}]


def test_point_of_unknown_measurement_commits_nothing(store: EmbeddedStore) -> None:
    """A batch holding a point of an unknown measurement stores none of its readings."""
    batch = Batch([Reading("s1", "a1", None, T, {"t": 1.0})], [Point("bogus", {}, {"x": 1.0}, T)])
    with pytest.raises((StoreError, ValueError), match="bogus"):
        store.write(batch)
    assert store.count("telemetry") == 0


def test_point_of_unknown_measurement_raises_store_error(store: EmbeddedStore) -> None:
    """A batch the store cannot take raises StoreError (not retryable), as Store promises."""
    batch = Batch([Reading("s1", "a1", None, T, {"t": 1.0})], [Point("bogus", {}, {"x": 1.0}, T)])
    with pytest.raises(StoreError) as info:
        store.write(batch)
    assert info.value.retryable is False


def test_data_survives_close_and_reopen(path: Path) -> None:
    """Committed readings and points are there after closing and reopening the file."""
    first = EmbeddedStore(path)
    first.write(Batch([Reading("s1", "a1", "k", T, {"t": 1.0})], [_alert()]))
    first.close()
    second = EmbeddedStore(path)
    try:
        assert [row["fields"] for row in second.rows("telemetry")] == [{"t": 1.0}]
        assert second.count("alert") == 1
    finally:
        second.close()


def test_database_is_in_wal_mode(store: EmbeddedStore, path: Path) -> None:
    """The database file is in WAL mode, so readers can run beside the writer."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_another_connection_reads_committed_rows(store: EmbeddedStore, path: Path) -> None:
    """A second connection (the CLI) sees a batch as soon as write returns."""
    store.write(Batch([Reading("s1", "a1", None, T, {"t": 1.0})]))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (1,)
    finally:
        conn.close()
