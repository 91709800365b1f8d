"""InfluxDB writing over real HTTP: credentials, retries, refusals and draining the spool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import wait_for

from ingest.base import Batch, Reading
from ingest.errors import StoreError
from ingest.influx import InfluxStore, InfluxWriter
from ingest.metrics import IngestMetrics
from ingest.spool import Spool

pytestmark = pytest.mark.integration


@dataclass
class WriteServer:
    """An HTTP server speaking the v2 write API's status codes, scripted per request."""

    statuses: list[int] = field(default_factory=list)
    refuse: bytes | None = None  # a request containing this is refused with 400
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[WriteServer]:
    state = WriteServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.path, dict(self.headers), body))
            status = state.statuses.pop(0) if state.statuses else 204
            if state.refuse is not None and state.refuse in body:
                status = 400
            payload = b'{"code":"invalid","message":"unable to parse line 1"}'
            self.send_response(status)
            if status == 503:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(payload) if status >= 400 else 0))
            self.end_headers()
            if status >= 400:
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _batch(n: int, start: int = 0) -> Batch:
    return Batch([Reading("s1", "a1", None, t, {"t": float(t)}) for t in range(start, start + n)])


def test_writer_sends_token_org_bucket_and_ns_lines(server: WriteServer) -> None:
    """The v2 write call carries the token header, org, bucket, ns precision and the lines."""
    writer = InfluxWriter(server.url, "tok", "acme", "plant", timeout=5)
    writer.write("telemetry,site=s1,asset=a1 t=1.0 5")
    writer.close()
    path, headers, body = server.requests[0]
    assert path.startswith("/api/v2/write?")
    assert {"org=acme", "bucket=plant", "precision=ns"} <= set(path.split("?")[1].split("&"))
    assert headers["Authorization"] == "Token tok"
    assert body == b"telemetry,site=s1,asset=a1 t=1.0 5"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, True), (404, True), (429, True), (500, True), (503, True)],
)
def test_writer_classifies_http_errors(server: WriteServer, status: int, retryable: bool) -> None:
    """Malformed-data refusals are final; auth, missing bucket, limits and 5xx are retried."""
    server.statuses.append(status)
    writer = InfluxWriter(server.url, "tok", "acme", "plant", timeout=5)
    with pytest.raises(StoreError) as caught:
        writer.write("x")
    writer.close()
    assert caught.value.retryable is retryable
    assert str(status) in str(caught.value)


def test_writer_reports_an_unreachable_server_as_retryable() -> None:
    """Nobody listening: a retryable StoreError naming the URL."""
    from meshwatch.localservers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    writer = InfluxWriter(url, "", "", "b", timeout=2)
    with pytest.raises(StoreError, match="unreachable") as caught:
        writer.write("x")
    writer.close()
    assert caught.value.retryable


def test_store_drains_the_spool_in_batches(server: WriteServer, tmp_path: Path) -> None:
    """Spooled lines go out in requests of at most batch_lines, and the spool empties."""
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    for n in range(5):
        lines = (f"telemetry,site=s,asset=a t=1.0 {n * 100 + i}" for i in range(100))
        spool.append("\n".join(lines).encode(), lines=100)
    store = InfluxStore(
        spool, InfluxWriter(server.url, "", "", "b", 5), IngestMetrics(), batch_lines=200
    )
    wait_for(lambda: spool.depth_lines == 0, 10, "the spool to drain")
    store.close()
    assert [body.count(b"\n") + 1 for _, _, body in server.requests] == [200, 200, 100]


def test_store_retries_until_the_server_takes_the_lines(
    server: WriteServer, tmp_path: Path
) -> None:
    """Server errors are retried with backoff; the lines stay spooled until taken."""
    server.statuses.extend([503, 500])
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    store = InfluxStore(
        spool, InfluxWriter(server.url, "", "", "b", 5), IngestMetrics(), backoff_min=0.05
    )
    store.write(_batch(10))
    wait_for(lambda: spool.depth_lines == 0, 15, "the spool to drain")
    store.close()
    assert len(server.requests) == 3
    assert server.requests[0][2] == server.requests[2][2]


def test_store_sets_aside_only_the_lines_the_server_refuses(
    server: WriteServer, tmp_path: Path
) -> None:
    """A 400 on a batch isolates the bad line: it is kept aside, its 99 neighbours written."""
    server.refuse = b"asset=bad"
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    metrics = IngestMetrics()
    store = InfluxStore(spool, InfluxWriter(server.url, "", "", "b", 5), metrics)
    readings = [Reading("s1", "bad" if n == 37 else "a1", None, n, {"t": 1.0}) for n in range(100)]
    store.write(Batch(readings))
    wait_for(lambda: spool.depth_lines == 0, 10, "the spool to drain")
    store.close()
    written = [
        line
        for _, _, body in server.requests[1:]
        if b"asset=bad" not in body
        for line in body.split(b"\n")
    ]
    assert sorted(written) == sorted(
        f"telemetry,site=s1,asset=a1 t=1.0 {n}".encode() for n in range(100) if n != 37
    )
    assert [line for line, _ in Spool(tmp_path / "spool.db", 1 << 20).rejected()] == [
        b"telemetry,site=s1,asset=bad t=1.0 37"
    ]
    assert metrics.registry.get_sample_value("meshwatch_influx_lines_rejected_total") == 1
    assert metrics.registry.get_sample_value("meshwatch_influx_lines_written_total") == 99


def test_store_splits_large_batches_into_requests_of_batch_lines(
    server: WriteServer, tmp_path: Path
) -> None:
    """A batch larger than batch_lines never goes out as one oversized request."""
    spool = Spool(tmp_path / "spool.db", max_bytes=1 << 20)
    store = InfluxStore(
        spool, InfluxWriter(server.url, "", "", "b", 5), IngestMetrics(), batch_lines=300
    )
    store.write(_batch(1000))
    wait_for(lambda: spool.depth_lines == 0, 10, "the spool to drain")
    store.close()
    assert [body.count(b"\n") + 1 for _, _, body in server.requests] == [300, 300, 300, 100]
