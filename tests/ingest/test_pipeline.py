"""The batch step: decode once, process once, commit durably, retry without repeating work."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ingest.base import Batch, Point, Reading
from ingest.deadletters import DeadLetters
from ingest.decode import Decoder
from ingest.embedded import EmbeddedStore
from ingest.errors import StoreError
from ingest.metrics import IngestMetrics
from ingest.pipeline import IngestPipeline, Message
from ingest.topic import TopicTemplate

NOW = 1_767_225_600 * 10**9


class CountingScorer:
    """A processor that emits one anomaly point per reading and counts its calls."""

    def __init__(self) -> None:
        self.seen = 0
        self.commits = 0

    def process(
        self, readings: Sequence[Reading], derived: Sequence[Point] = ()
    ) -> Sequence[Point]:
        self.seen += len(readings)
        return [
            Point(
                "anomaly",
                {"site": r.site, "asset": r.asset, "detector": "test"},
                {"score": 0.5, "anomalous": False},
                r.ts,
            )
            for r in readings
        ]

    def tick(self) -> Sequence[Point]:
        return []

    def committed(self) -> None:
        self.commits += 1

    def close(self) -> None:
        pass


class FlakyStore:
    """A real embedded store that refuses the first `failures` writes (a full disk, say)."""

    def __init__(self, inner: EmbeddedStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def write(self, batch: Batch) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full")
        self.inner.write(batch)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def parts(tmp_path: Path) -> tuple[EmbeddedStore, DeadLetters, IngestMetrics]:
    return (
        EmbeddedStore(tmp_path / "meshwatch.db"),
        DeadLetters(tmp_path / "deadletters.db"),
        IngestMetrics(),
    )


def _messages() -> list[Message]:
    good = b'{"ts": 1767225600, "metrics": {"t": 1.5}}'
    return [
        Message("plant/s1/a1/telemetry", good, NOW, mid=1),
        Message("plant/s1/a1/telemetry", b"{", NOW, mid=2),
        Message("plant/s1/a2/telemetry", good, NOW, mid=3),
    ]


def _pipeline(store, deadletters, metrics, processors=()) -> IngestPipeline:
    decoder = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    return IngestPipeline(decoder, store, deadletters, metrics, processors)


def test_points_from_processors_are_committed_with_their_readings(parts) -> None:
    """A processor's points land in the same commit as the readings they score."""
    store, deadletters, metrics = parts
    scorer = CountingScorer()
    pipeline = _pipeline(store, deadletters, metrics, [scorer])
    pipeline.commit(pipeline.prepare(_messages()))
    assert store.count("telemetry") == 2
    assert [r["asset"] for r in store.rows("anomaly")] == ["a1", "a2"]


def test_retried_commit_runs_processors_once_and_stores_dead_letters_once(
    parts, tmp_path: Path
) -> None:
    """After failed commits, a retry neither re-scores readings nor duplicates dead letters."""
    store, deadletters, metrics = parts
    scorer = CountingScorer()
    flaky = FlakyStore(store, failures=2)
    pipeline = _pipeline(flaky, deadletters, metrics, [scorer])
    prepared = pipeline.prepare(_messages())
    for _ in range(2):
        with pytest.raises(StoreError):
            pipeline.commit(prepared)
    pipeline.commit(prepared)
    assert scorer.seen == 2
    assert deadletters.counts() == {"bad_json": 1}
    assert store.count("telemetry") == 2


def test_processors_hear_of_a_commit_only_once_the_store_took_it(parts) -> None:
    """`committed` follows a successful write, never a refused one (alert state waits for it)."""
    store, deadletters, metrics = parts
    scorer = CountingScorer()
    pipeline = _pipeline(FlakyStore(store, failures=1), deadletters, metrics, [scorer])
    prepared = pipeline.prepare(_messages())
    with pytest.raises(StoreError):
        pipeline.commit(prepared)
    assert scorer.commits == 0
    pipeline.commit(prepared)
    assert scorer.commits == 1


def test_rejections_are_counted_by_reason_and_readings_after_commit(parts) -> None:
    """Metrics count messages and rejections when prepared, readings once committed."""
    store, deadletters, metrics = parts
    pipeline = _pipeline(store, deadletters, metrics)
    prepared = pipeline.prepare(_messages())
    registry = metrics.registry
    assert registry.get_sample_value("meshwatch_messages_received_total") == 3
    assert (
        registry.get_sample_value("meshwatch_messages_rejected_total", {"reason": "bad_json"}) == 1
    )
    assert registry.get_sample_value("meshwatch_readings_accepted_total") == 0
    pipeline.commit(prepared)
    assert registry.get_sample_value("meshwatch_readings_accepted_total") == 2


def test_rejected_messages_are_handed_on_after_they_are_stored(parts) -> None:
    """`on_rejected` sees each dead letter once it is durable (to republish it)."""
    store, deadletters, metrics = parts
    seen = []
    pipeline = _pipeline(store, deadletters, metrics)
    pipeline.on_rejected = lambda letter: seen.append((letter.reason.value, deadletters.counts()))
    pipeline.commit(pipeline.prepare(_messages()))
    assert seen == [("bad_json", {"bad_json": 1})]


def test_rejections_are_logged_at_a_bounded_rate(parts, caplog) -> None:
    """A flood of one kind of bad message logs one warning, not one per message."""
    store, deadletters, metrics = parts
    pipeline = _pipeline(store, deadletters, metrics)
    flood = [Message("plant/s1/a1/telemetry", b"{", NOW, mid=n) for n in range(500)]
    with caplog.at_level("WARNING", logger="ingest.pipeline"):
        pipeline.commit(pipeline.prepare(flood))
    assert len(caplog.records) == 1
    assert "bad_json" in caplog.records[0].getMessage()


class CrashingDecoder(Decoder):
    """A decoder with a bug: it raises on payloads containing b"boom"."""

    def decode(self, topic: str, payload: bytes, arrival_ns: int) -> list[Reading]:
        if b"boom" in payload:
            raise KeyError("boom")
        return super().decode(topic, payload, arrival_ns)


def test_a_decoder_crash_becomes_an_internal_error_dead_letter(parts) -> None:
    """A bug in decoding keeps the message as a dead letter and the batch goes on."""
    store, deadletters, metrics = parts
    decoder = CrashingDecoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    pipeline = IngestPipeline(decoder, store, deadletters, metrics)
    messages = [*_messages(), Message("plant/s1/a3/telemetry", b'{"boom": 1}', NOW, mid=9)]
    pipeline.commit(pipeline.prepare(messages))
    assert deadletters.counts() == {"bad_json": 1, "internal_error": 1}
    assert store.count("telemetry") == 2


class BrokenScorer:
    def process(
        self, readings: Sequence[Reading], derived: Sequence[Point] = ()
    ) -> Sequence[Point]:
        raise RuntimeError("model file corrupt")

    def tick(self) -> Sequence[Point]:
        raise RuntimeError("model file corrupt")

    def committed(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_failing_processor_leaves_readings_stored_unscored(parts) -> None:
    """A processor that raises costs the scores of that batch, never its readings."""
    store, deadletters, metrics = parts
    pipeline = _pipeline(store, deadletters, metrics, [BrokenScorer()])
    pipeline.commit(pipeline.prepare(_messages()))
    assert store.count("telemetry") == 2
    assert metrics.registry.get_sample_value("meshwatch_processor_errors_total") == 1


def test_sequence_gaps_are_counted_per_asset(parts) -> None:
    """Readings missing by the sensor's own seq numbers are counted, redeliveries are not."""
    store, deadletters, metrics = parts
    pipeline = _pipeline(store, deadletters, metrics)
    messages = [
        Message("plant/s1/a1/telemetry", f'{{"seq": {seq}, "t": 1.0}}'.encode(), NOW + seq)
        for seq in (1, 2, 6, 6, 3, 7, 9)
    ]
    pipeline.commit(pipeline.prepare(messages))
    assert metrics.registry.get_sample_value("meshwatch_sequence_gaps_total") == 4


def test_oversize_dead_letters_keep_only_up_to_the_limit(parts) -> None:
    """A 1 MiB payload is a dead letter of max_payload bytes, its size named in the detail."""
    store, deadletters, metrics = parts
    pipeline = _pipeline(store, deadletters, metrics)
    huge = b"x" * (1 << 20)
    pipeline.commit(pipeline.prepare([Message("plant/s1/a1/telemetry", huge, NOW)]))
    (letter,) = deadletters.latest()
    assert letter.payload == huge[:65_536]
    assert str(1 << 20) in letter.detail
