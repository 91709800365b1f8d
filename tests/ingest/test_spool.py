"""Unit tests of the durable spool (`ingest.spool`), on real SQLite files in tmp_path."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.errors import SpoolFull, StoreError
from ingest.spool import Spool


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Return where the spool file goes."""
    return tmp_path / "spool.db"


@pytest.fixture
def spool(path: Path) -> Iterator[Spool]:
    """Yield a roomy spool, closed afterwards."""
    s = Spool(path, max_bytes=1_000_000)
    yield s
    s.close()


def _bodies(spool: Spool, max_lines: int = 1_000_000) -> list[str]:
    return [c.body.decode() for c in spool.oldest(max_lines)]


def test_chunks_come_out_in_append_order(spool: Spool) -> None:
    """oldest() returns chunks first in, first out."""
    for body in (b"c", b"a", b"b"):
        spool.append(body, lines=1)
    assert _bodies(spool) == ["c", "a", "b"]


def test_chunk_keeps_body_and_line_count(spool: Spool) -> None:
    """A chunk comes back with its exact body and line count."""
    body = b"telemetry,site=s,asset=a t=1.0 1\ntelemetry,site=s,asset=a t=2.0 2"
    spool.append(body, lines=2)
    ((chunk),) = spool.oldest(10)
    assert (chunk.body, chunk.lines) == (body, 2)


def test_oldest_respects_the_line_budget(spool: Spool) -> None:
    """oldest(max_lines) stops before the chunk that would exceed the budget."""
    for n, lines in enumerate((3, 4, 2, 1)):
        spool.append(f"chunk{n}".encode(), lines=lines)
    assert _bodies(spool, max_lines=7) == ["chunk0", "chunk1"]
    assert _bodies(spool, max_lines=8) == ["chunk0", "chunk1"]
    assert _bodies(spool, max_lines=9) == ["chunk0", "chunk1", "chunk2"]


def test_oldest_returns_at_least_one_chunk_over_the_budget(spool: Spool) -> None:
    """A first chunk larger than the budget is still returned, alone."""
    spool.append(b"big", lines=500)
    spool.append(b"small", lines=1)
    assert _bodies(spool, max_lines=10) == ["big"]


def test_oldest_of_an_empty_spool_is_empty(spool: Spool) -> None:
    """An empty spool has no chunks to give."""
    assert spool.oldest(10) == []


def test_oldest_does_not_remove(spool: Spool) -> None:
    """Reading the oldest chunks leaves them in the spool."""
    spool.append(b"a", lines=1)
    assert _bodies(spool) == _bodies(spool) == ["a"]
    assert spool.depth_lines == 1


def test_remove_forgets_chunks_and_lowers_depth(spool: Spool) -> None:
    """remove() drops the given chunks and their lines and bytes from the depth."""
    spool.append(b"aaaa", lines=2)
    spool.append(b"bb", lines=1)
    spool.remove(spool.oldest(2))
    assert _bodies(spool) == ["bb"]
    assert (spool.depth_lines, spool.depth_bytes) == (1, 2)


def test_append_past_max_bytes_raises_spool_full_and_stores_nothing(path: Path) -> None:
    """An append that would pass max_bytes raises SpoolFull and leaves the spool as it was."""
    spool = Spool(path, max_bytes=10)
    try:
        spool.append(b"x" * 6, lines=1)
        with pytest.raises(SpoolFull, match="spool is full"):
            spool.append(b"y" * 5, lines=1)
        assert _bodies(spool) == ["x" * 6]
        assert (spool.depth_lines, spool.depth_bytes) == (1, 6)
    finally:
        spool.close()


def test_spool_full_is_a_retryable_store_error() -> None:
    """SpoolFull is a retryable StoreError: back-pressure, not loss."""
    assert issubclass(SpoolFull, StoreError)
    assert SpoolFull("full").retryable is True


def test_append_up_to_exactly_max_bytes_is_accepted(path: Path) -> None:
    """Filling the spool to exactly max_bytes is allowed."""
    spool = Spool(path, max_bytes=10)
    try:
        spool.append(b"x" * 6, lines=1)
        spool.append(b"y" * 4, lines=1)
        assert spool.depth_bytes == 10
    finally:
        spool.close()


def test_empty_spool_accepts_one_oversize_chunk(path: Path) -> None:
    """An empty spool takes a chunk larger than max_bytes, so a big batch cannot deadlock."""
    spool = Spool(path, max_bytes=10)
    try:
        spool.append(b"z" * 50, lines=5)
        assert (spool.depth_lines, spool.depth_bytes) == (5, 50)
        with pytest.raises(SpoolFull):
            spool.append(b"a", lines=1)
    finally:
        spool.close()


def test_spool_accepts_again_once_drained(path: Path) -> None:
    """After the flusher removes chunks, appends succeed again."""
    spool = Spool(path, max_bytes=10)
    try:
        spool.append(b"x" * 10, lines=1)
        with pytest.raises(SpoolFull):
            spool.append(b"y", lines=1)
        spool.remove(spool.oldest(10))
        spool.append(b"y", lines=1)
        assert _bodies(spool) == ["y"]
    finally:
        spool.close()


def test_depth_counters_survive_reopen(path: Path) -> None:
    """Lines and bytes held are recounted from disk when the spool is reopened."""
    first = Spool(path, max_bytes=1000)
    first.append(b"abc", lines=2)
    first.append(b"defgh", lines=3)
    first.remove(first.oldest(2))
    first.close()
    second = Spool(path, max_bytes=1000)
    try:
        assert (second.depth_lines, second.depth_bytes) == (3, 5)
    finally:
        second.close()


def test_chunks_survive_reopen_in_order(path: Path) -> None:
    """Chunks left by an earlier run are drained first, in their order."""
    first = Spool(path, max_bytes=1000)
    for body in (b"one", b"two"):
        first.append(body, lines=1)
    first.close()
    second = Spool(path, max_bytes=1000)
    try:
        second.append(b"three", lines=1)
        assert _bodies(second) == ["one", "two", "three"]
    finally:
        second.close()


def test_reopened_spool_keeps_its_bound(path: Path) -> None:
    """Bytes held from an earlier run count against max_bytes after reopening."""
    first = Spool(path, max_bytes=10)
    first.append(b"x" * 8, lines=1)
    first.close()
    second = Spool(path, max_bytes=10)
    try:
        with pytest.raises(SpoolFull):
            second.append(b"y" * 3, lines=1)
    finally:
        second.close()


def test_remove_keeps_refused_lines_with_their_errors(spool: Spool) -> None:
    """remove() drops chunks from the queue and keeps the refused lines with the error."""
    spool.append(b"good 1\nbad line", lines=2)
    spool.append(b"good", lines=1)
    spool.remove(spool.oldest(2), [(b"bad line", "400: unable to parse 'bad line'")])
    assert _bodies(spool) == ["good"]
    assert (spool.depth_lines, spool.depth_bytes) == (1, 4)
    assert spool.rejected() == [(b"bad line", "400: unable to parse 'bad line'")]


def test_refused_lines_survive_reopen(path: Path) -> None:
    """Refused lines stay in the file across a restart, oldest first."""
    first = Spool(path, max_bytes=1 << 20)
    for n in range(3):
        first.append(f"line {n}".encode(), lines=1)
        first.remove(first.oldest(1), [(f"line {n}".encode(), f"e{n}")])
    first.close()
    second = Spool(path, max_bytes=1 << 20)
    assert second.rejected() == [(b"line 0", "e0"), (b"line 1", "e1"), (b"line 2", "e2")]
    assert second.depth_lines == 0
    second.close()


def test_append_many_is_one_transaction_under_the_bound(tmp_path: Path) -> None:
    """append_many stores all chunks or, over the bound, none of them."""
    spool = Spool(tmp_path / "small.db", max_bytes=60)
    spool.append_many([(b"a" * 10, 1), (b"b" * 10, 1)])
    assert (spool.depth_lines, spool.depth_bytes) == (2, 20)
    with pytest.raises(SpoolFull):
        spool.append_many([(b"c" * 50, 1), (b"d" * 50, 1)])
    assert _bodies(spool, 10) == ["a" * 10, "b" * 10]
    spool.close()


def test_concurrent_append_and_drain_lose_nothing(spool: Spool) -> None:
    """A writer and a flusher thread running together move every chunk once, in order."""
    total = 2_000
    drained: list[str] = []
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(total):
                spool.append(f"line {i}".encode(), lines=1)
        except BaseException as exc:
            errors.append(exc)

    def consume() -> None:
        try:
            while len(drained) < total and not errors:
                chunks = spool.oldest(max_lines=37)
                drained.extend(c.body.decode() for c in chunks)
                spool.remove(chunks)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f, daemon=True) for f in (produce, consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert drained == [f"line {i}" for i in range(total)]
    assert (spool.depth_lines, spool.depth_bytes, spool.oldest(10)) == (0, 0, [])


def test_depth_bytes_counts_utf8_bytes(spool: Spool) -> None:
    """depth_bytes counts the UTF-8 bytes of the bodies held, not their characters."""
    body = 'alert,site=s1 message="Überhitzung: 95 °C" 1'.encode()
    spool.append(body, lines=1)
    assert spool.depth_bytes == len(body)
