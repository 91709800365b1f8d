"""One conformance suite over every `Store`: the same checks for the embedded and InfluxDB stores.

Each implementation gets an adapter that builds it on real files in ``tmp_path`` (and, for
InfluxDB, a real VictoriaMetrics) and reads back what it holds in one shape, `Rows`, so that
every check is written once (river's ``check_estimator``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from support import BASE_TS, wait_for

from ingest.base import Batch, Point, Reading, Store
from ingest.embedded import TAGS, EmbeddedStore
from ingest.errors import SpoolFull, StoreError
from ingest.influx import InfluxStore, InfluxWriter
from ingest.metrics import IngestMetrics
from ingest.spool import Spool
from meshwatch.localservers import VictoriaMetrics

_MS = 1_000_000  # nanoseconds per millisecond: VictoriaMetrics keeps ms, so tests use whole ms


class Row(NamedTuple):
    """What one (measurement, asset, ms) holds: its tags beyond site and asset, and its fields."""

    tags: dict[str, str]
    fields: dict[str, float]


#: (measurement, asset, ts in ms) to its row, for one site.
Rows = dict[tuple[str, str, int], Row]


class _Subject:
    """How the checks build, read and refuse writes of one store implementation."""

    #: What a refused batch raises.
    refusal: type[StoreError] = StoreError
    #: Whether a bool field reads back as a bool (else as 1.0/0.0).
    keeps_bools = True

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._stores: list[Store] = []

    def make(self, tmp_path: Path) -> Store:
        """A store on files in `tmp_path`; a second call reopens the same files."""
        raise NotImplementedError

    def read(self, store: Store, site: str) -> Rows:
        """Everything `store` durably holds for `site`."""
        raise NotImplementedError

    def refusing(self, tmp_path: Path, site: str) -> AbstractContextManager[tuple[Store, Batch]]:
        """A store that takes one ordinary batch, then must refuse the yielded one whole."""
        raise NotImplementedError

    def close(self) -> None:
        """Close every store made (closing twice is harmless)."""
        for store in self._stores:
            store.close()


class _Embedded(_Subject):
    def make(self, tmp_path: Path) -> Store:
        store = EmbeddedStore(tmp_path / "meshwatch.db")
        self._stores.append(store)
        return store

    def read(self, store: Store, site: str) -> Rows:
        assert isinstance(store, EmbeddedStore)
        rows: Rows = {}
        for measurement, tags in TAGS.items():
            for row in store.rows(measurement, site=site):
                # A missing tag is stored as ''; InfluxDB leaves it out: both mean "no tag".
                extra = {t: str(row[t]) for t in tags if t not in ("site", "asset") and row[t]}
                key = (measurement, str(row["asset"]), int(str(row["ts"])) // _MS)
                assert key not in rows, f"two rows for {key}"
                rows[key] = Row(extra, dict(row["fields"]))  # type: ignore[call-overload]
        return rows

    @contextmanager
    def refusing(self, tmp_path: Path, site: str) -> Iterator[tuple[Store, Batch]]:
        """A batch with a point of a measurement that has no table."""
        forecast = Point("forecast", {"site": site, "asset": "a1"}, {"value": 1.0}, _ts(200))
        yield self.make(tmp_path), Batch(_readings(site, start=100), [forecast])


class _Influx(_Subject):
    refusal = SpoolFull
    keeps_bools = False  # VictoriaMetrics stores floats only

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self._servers: dict[int, VictoriaMetrics] = {}

    def make(self, tmp_path: Path) -> Store:
        return self._make(tmp_path, self._request.getfixturevalue("victoria_metrics"))

    def _make(self, tmp_path: Path, vm: VictoriaMetrics, max_bytes: int = 1 << 20) -> InfluxStore:
        store = InfluxStore(
            Spool(tmp_path / "spool.db", max_bytes=max_bytes),
            InfluxWriter(vm.url, token="", org="o", bucket="b", timeout=5),
            IngestMetrics(),
            # Retry within a fraction of a second: the outage in `refusing` lasts milliseconds.
            backoff_min=0.05,
            backoff_max=0.2,
        )
        self._stores.append(store)
        self._servers[id(store)] = vm
        return store

    def read(self, store: Store, site: str) -> Rows:
        assert isinstance(store, InfluxStore)
        wait_for(lambda: store.spool.depth_lines == 0, 10, "the spool to drain")
        rows: Rows = {}
        for series in self._servers[id(store)].export(f'{{site="{site}"}}'):
            labels = dict(series["metric"])
            # Field f of measurement m is the series m_f; measurements have no underscore.
            measurement, field = labels.pop("__name__").split("_", 1)
            del labels["site"]
            asset = labels.pop("asset")
            for ts, value in zip(series["timestamps"], series["values"], strict=True):
                row = rows.setdefault((measurement, asset, ts), Row(labels, {}))
                assert row.tags == labels, f"{measurement} fields at {ts} differ in tags"
                # Without dedup a rewrite is a second sample at the same ms: surface it.
                assert field not in row.fields, f"two samples of {field} at {ts}"
                row.fields[field] = float(value)  # JSON gives 1 for 1.0
        return rows

    @contextmanager
    def refusing(self, tmp_path: Path, site: str) -> Iterator[tuple[Store, Batch]]:
        """The server is down, so the spool keeps what it took; a batch past its bound fails."""
        vm: VictoriaMetrics = self._request.getfixturevalue("fresh_victoria_metrics")
        vm.stop()
        # Smaller than any batch here: once the spool holds anything, the next batch is refused.
        store = self._make(tmp_path, vm, max_bytes=64)
        try:
            yield store, Batch(_readings(site, start=100))
        finally:
            vm.start()


@pytest.fixture(
    params=[
        pytest.param(_Embedded, id="embedded"),
        pytest.param(_Influx, id="influx", marks=pytest.mark.integration),
    ]
)
def subject(request: pytest.FixtureRequest) -> Iterator[_Subject]:
    """Yield the adapter of one store implementation; close its stores afterwards."""
    adapter: _Subject = request.param(request)
    yield adapter
    adapter.close()


@pytest.fixture
def site(unique_topic: str) -> str:
    """Return a site ID of this test's own, so series of the shared server never collide."""
    return unique_topic


def _ts(n: int) -> int:
    """The n-th test timestamp in ns: in the past, a whole and distinct millisecond."""
    return (BASE_TS + n) * _MS


def _readings(site: str, start: int = 0) -> list[Reading]:
    """Readings of two assets, with and without `kind`, at distinct milliseconds."""
    return [
        Reading(site, "a1", "cnc-mill", _ts(start), {"temp": 61.2, "vibration_rms": 0.031}),
        Reading(site, "a1", "cnc-mill", _ts(start + 1), {"temp": -3.5, "rpm": 1200.0}),
        Reading(site, "a2", None, _ts(start + 2), {"temp": 0.0}),
    ]


def _expected(readings: list[Reading]) -> Rows:
    """What reading back `readings` must give."""
    return {
        ("telemetry", r.asset, r.ts // _MS): Row(
            {"kind": r.kind} if r.kind else {}, dict(r.metrics)
        )
        for r in readings
    }


def test_readings_read_back_with_exact_values_and_tags(
    subject: _Subject, tmp_path: Path, site: str
) -> None:
    """A written batch of readings reads back with its exact values, tags and times."""
    store = subject.make(tmp_path)
    readings = _readings(site)
    store.write(Batch(readings))
    assert subject.read(store, site) == _expected(readings)


def test_kind_is_a_tag_only_when_the_reading_has_one(
    subject: _Subject, tmp_path: Path, site: str
) -> None:
    """A reading with `kind` reads back tagged with it; one without reads back with no kind."""
    store = subject.make(tmp_path)
    store.write(
        Batch(
            [
                Reading(site, "a1", "pump", _ts(0), {"temp": 1.5}),
                Reading(site, "a1", None, _ts(1), {"temp": 2.5}),
            ]
        )
    )
    assert subject.read(store, site) == {
        ("telemetry", "a1", BASE_TS): Row({"kind": "pump"}, {"temp": 1.5}),
        ("telemetry", "a1", BASE_TS + 1): Row({}, {"temp": 2.5}),
    }


def test_anomaly_points_read_back_with_scores_and_flag(
    subject: _Subject, tmp_path: Path, site: str
) -> None:
    """Anomaly points keep score and threshold; the flag reads back as a bool, or as 1/0."""
    store = subject.make(tmp_path)
    tags = {"site": site, "asset": "a1", "detector": "hst"}
    scores = [(0.97, True), (0.25, False)]
    store.write(
        Batch(
            points=[
                Point("anomaly", tags, {"score": s, "threshold": 0.9, "anomalous": a}, _ts(n))
                for n, (s, a) in enumerate(scores)
            ]
        )
    )
    rows = subject.read(store, site)
    assert rows == {
        ("anomaly", "a1", BASE_TS): Row(
            {"detector": "hst"}, {"score": 0.97, "threshold": 0.9, "anomalous": 1.0}
        ),
        ("anomaly", "a1", BASE_TS + 1): Row(
            {"detector": "hst"}, {"score": 0.25, "threshold": 0.9, "anomalous": 0.0}
        ),
    }
    # True == 1.0 in Python: check the type too. A store that keeps bools must keep them.
    flags = {type(row.fields["anomalous"]) for row in rows.values()}
    assert flags == ({bool} if subject.keeps_bools else {float})


def test_writing_a_batch_twice_stores_it_once(subject: _Subject, tmp_path: Path, site: str) -> None:
    """Writing the same batch again (a redelivery) leaves the same data."""
    store = subject.make(tmp_path)
    readings = _readings(site)
    store.write(Batch(readings))
    store.write(Batch(readings))
    assert subject.read(store, site) == _expected(readings)


def test_an_empty_batch_is_accepted(subject: _Subject, tmp_path: Path, site: str) -> None:
    """An empty batch is written without error and stores nothing."""
    store = subject.make(tmp_path)
    store.write(Batch())
    assert subject.read(store, site) == {}


def test_data_written_before_close_is_there_after_reopening(
    subject: _Subject, tmp_path: Path, site: str
) -> None:
    """Close a store right after a write: a new store on the same files holds all of it."""
    store = subject.make(tmp_path)
    readings = _readings(site)
    store.write(Batch(readings))
    store.close()  # for InfluxDB usually before the flusher sent it: the spool keeps it
    reopened = subject.make(tmp_path)
    assert subject.read(reopened, site) == _expected(readings)


def test_a_refused_batch_stores_none_of_it(subject: _Subject, tmp_path: Path, site: str) -> None:
    """A batch the store refuses raises StoreError, and nothing of it is stored."""
    kept = _readings(site)
    with subject.refusing(tmp_path, site) as (store, doomed):
        store.write(Batch(kept))
        with pytest.raises(subject.refusal):
            store.write(doomed)
    assert subject.read(store, site) == _expected(kept)
