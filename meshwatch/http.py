"""The HTTP endpoint: ``/metrics`` for Prometheus and ``/healthz`` for orchestrators."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from meshwatch.errors import ConfigError
from meshwatch.settings import HttpSettings

#: How often the serving thread looks for `MetricsServer.close` (s): it blocks that long at most.
_SHUTDOWN_POLL = 0.05

#: Returns (healthy, details); details are shown as JSON by ``/healthz``.
HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class MetricsServer:
    """Serves metrics and health on a background thread.

    Parameters
    ----------
    host, port
        Where to listen; port 0 picks a free one (see `port` after start).
    registry
        The Prometheus registry to expose.
    health
        Called on each ``/healthz``: 200 when healthy, 503 otherwise.
    """

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: HealthCheck
    ) -> None:
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(_SHUTDOWN_POLL,), name="http", daemon=True
        )

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()


def serve(
    settings: HttpSettings, registry: CollectorRegistry, health: HealthCheck
) -> MetricsServer:
    """The endpoint of `settings` (not started); `ConfigError` when its port is taken."""
    try:
        return MetricsServer(settings.host, settings.port, registry, health)
    except OSError as exc:
        raise ConfigError(
            f"invalid setting http.port (MESHWATCH_HTTP__PORT): cannot listen on "
            f"{settings.host}:{settings.port}: {exc.strerror}"
        ) from None


def check_free(settings: HttpSettings, workers: int = 1) -> None:
    """Refuse, with a `ConfigError`, ``http.port`` or a worker's port that is taken.

    Worker k of ``--workers`` serves on ``http.port`` + 1 + k; the reader on ``http.port``.
    Nothing stays open: each port is bound and let go at once.
    """
    if settings.port == 0:
        return
    for k in range(-1, workers if workers > 1 else 0):
        port = settings.port + 1 + k
        try:
            with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as s:
                # As the server will: a port left in TIME_WAIT by an earlier run is free.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((settings.host, port))
        except OSError as exc:
            whose = "" if k < 0 else f" (worker {k}'s, http.port + {k + 1})"
            raise ConfigError(
                f"invalid setting http.port (MESHWATCH_HTTP__PORT): cannot listen on "
                f"{settings.host}:{port}{whose}: {exc.strerror}"
            ) from None


def _handler(registry: CollectorRegistry, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                ok, details = health()
                body = orjson.dumps({"status": "ok" if ok else "unhealthy", **details})
                self._reply(200 if ok else 503, "application/json", body)
            else:
                self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would drown the log; stay quiet."""

    return Handler
