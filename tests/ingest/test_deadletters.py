"""Unit tests of the dead-letter store (`ingest.deadletters`), on real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.deadletters import DeadLetter, DeadLetters
from ingest.errors import Reason

TOPIC = "plant/s1/a1/telemetry"
T = 1_795_521_600_123_456_789


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Return where the dead-letter file goes."""
    return tmp_path / "deadletters.db"


@pytest.fixture
def letters(path: Path) -> Iterator[DeadLetters]:
    """Yield a dead-letter store, closed afterwards."""
    store = DeadLetters(path, max_rows=1_000)
    yield store
    store.close()


def _letter(n: int, reason: Reason = Reason.BAD_JSON) -> DeadLetter:
    return DeadLetter(T + n, TOPIC, reason, f"detail {n}", f"payload {n}".encode())


def test_letter_round_trips_exactly(letters: DeadLetters) -> None:
    """Time, topic, reason, detail and every byte of a binary payload come back unchanged."""
    letter = DeadLetter(
        T,
        "plant/s 1/a1/telemetry",
        Reason.BAD_UTF8,
        "payload is not UTF-8 (byte 0: invalid start byte)",
        bytes(range(256)) + b"\x00\xff",
    )
    letters.add([letter])
    assert letters.latest() == [letter]


def test_empty_payload_round_trips(letters: DeadLetters) -> None:
    """An empty payload is kept as b''."""
    letters.add([DeadLetter(T, TOPIC, Reason.BAD_JSON, "empty", b"")])
    assert letters.latest()[0].payload == b""


def test_reason_comes_back_as_a_reason(letters: DeadLetters) -> None:
    """The stored reason is read back as the Reason enum member."""
    letters.add([_letter(0, Reason.NON_FINITE)])
    assert letters.latest()[0].reason is Reason.NON_FINITE


def test_latest_is_newest_first(letters: DeadLetters) -> None:
    """latest() lists the most recently added letters first."""
    letters.add([_letter(0), _letter(1)])
    letters.add([_letter(2)])
    assert [d.received_at - T for d in letters.latest()] == [2, 1, 0]


def test_latest_respects_its_limit(letters: DeadLetters) -> None:
    """latest(limit) returns only the newest `limit` letters."""
    letters.add([_letter(n) for n in range(5)])
    assert [d.received_at - T for d in letters.latest(limit=2)] == [4, 3]


def test_latest_filters_by_reason(letters: DeadLetters) -> None:
    """latest(reason=...) keeps only letters of that reason, still newest first."""
    reasons = [Reason.BAD_JSON, Reason.BAD_ID, Reason.BAD_JSON, Reason.OVERSIZE]
    letters.add([_letter(n, r) for n, r in enumerate(reasons)])
    assert [d.received_at - T for d in letters.latest(reason=Reason.BAD_JSON)] == [2, 0]
    assert letters.latest(reason=Reason.NO_METRICS) == []


def test_counts_by_reason(letters: DeadLetters) -> None:
    """counts() gives how many letters each reason holds."""
    reasons = [Reason.BAD_JSON, Reason.BAD_ID, Reason.BAD_JSON, Reason.OVERSIZE]
    letters.add([_letter(n, r) for n, r in enumerate(reasons)])
    assert letters.counts() == {"bad_id": 1, "bad_json": 2, "oversize": 1}


def test_counts_of_an_empty_store_is_empty(letters: DeadLetters) -> None:
    """A store without letters counts nothing."""
    assert letters.counts() == {}


def test_adding_no_letters_changes_nothing(letters: DeadLetters) -> None:
    """add([]) is a no-op."""
    letters.add([_letter(0)])
    letters.add([])
    assert letters.counts() == {"bad_json": 1}


def test_trims_to_max_rows_keeping_the_newest(path: Path) -> None:
    """Past max_rows, the oldest letters go first."""
    store = DeadLetters(path, max_rows=3)
    try:
        store.add([_letter(n) for n in range(5)])
        assert [d.received_at - T for d in store.latest()] == [4, 3, 2]
    finally:
        store.close()


def test_trims_across_several_adds(path: Path) -> None:
    """Trimming keeps the newest max_rows whatever the add sizes."""
    store = DeadLetters(path, max_rows=4)
    try:
        for n in range(10):
            store.add([_letter(n)])
        store.add([_letter(10), _letter(11)])
        assert [d.received_at - T for d in store.latest()] == [11, 10, 9, 8]
        assert store.counts() == {"bad_json": 4}
    finally:
        store.close()


def test_letters_survive_reopen(path: Path) -> None:
    """Stored letters are there after closing and reopening the file."""
    first = DeadLetters(path)
    first.add([_letter(0, Reason.BAD_TOPIC)])
    first.close()
    second = DeadLetters(path)
    try:
        assert second.latest() == [_letter(0, Reason.BAD_TOPIC)]
    finally:
        second.close()
