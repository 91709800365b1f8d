"""``meshwatch run --workers N``: one reader on the broker, N worker processes behind it.

The reader is the usual subscriber (the usual session, ``mqtt.client_id``) with the fan-out
(`ingest.fanout.FanOut`) where the pipeline would be: it hands each message to the worker
that owns its asset (`ingest.partition`) and acks a batch once every worker has committed
its share, so acks still follow the durable write, in order on the one connection. Each
worker is a whole pipeline behind a socket pair (`ingest.handoff.Handoff`): decoding,
models, alerts and the store, its own state in ``<data_dir>/workers/<k>``.

The reader also supervises: a worker that dies is started again (with a pause doubling from
1 s to 30 s while it keeps dying) and sent what it had not confirmed; nothing of that batch
was acked, the store takes a resent reading once, and the worker's saved alert state and
outbox keep notifications from repeating. A worker that cannot start at all stops the run
with its error. SIGTERM or SIGINT stop the reader, which finishes its batch and closes the
links; each worker then commits, saves and exits (workers ignore the signals themselves, so
that a Ctrl-C to the whole process group stops them in that order).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.fanout import FanOut
from ingest.handoff import READY
from ingest.metrics import IngestMetrics
from ingest.subscriber import Subscriber
from ingest.topic import TopicTemplate
from meshwatch import http
from meshwatch.app import run_source, stop_on_signals
from meshwatch.errors import ConfigError, MeshwatchError
from meshwatch.http import MetricsServer
from meshwatch.settings import Settings

log = logging.getLogger("meshwatch")

#: A worker that exits this soon after its first start could not run: the run stops.
_START_UP = 10.0
#: Pauses before a restart: doubling from the first to the last while the worker keeps dying,
#: back to the first once it has run `_STEADY` seconds.
_PAUSE_MIN, _PAUSE_MAX, _STEADY = 1.0, 30.0, 60.0
#: How long the workers get to commit and save after the reader stopped, before SIGKILL.
_GRACE = 30.0
#: The longest wait for a started worker's `READY` before the reader goes on without it.
_READY_WAIT = 60.0


class WorkerFailed(MeshwatchError):
    """A worker exited at its first start: it would fail again however often restarted."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_env(
    base: Mapping[str, str], index: int, count: int, client_id: str, http_port: int
) -> dict[str, str]:
    """The environment of worker `index` of `count`: its state, alerts session and HTTP port.

    Examples
    --------
    >>> env = worker_env({}, 1, 2, "meshwatch-ingest", 9464)
    >>> env["MESHWATCH_INGEST__PARTITION"], env["MESHWATCH_MQTT__CLIENT_ID"]
    ('1/2', 'meshwatch-ingest-w1')
    >>> env["MESHWATCH_HTTP__PORT"], env["MESHWATCH_WORKERS"]
    ('9466', '1')
    """
    return {
        **base,
        "MESHWATCH_INGEST__PARTITION": f"{index}/{count}",
        "MESHWATCH_WORKERS": "1",
        "MESHWATCH_MQTT__CLIENT_ID": f"{client_id}-w{index}",
        "MESHWATCH_HTTP__PORT": str(http_port + 1 + index if http_port else 0),
    }


class WorkerProcess:
    """One worker: a ``meshwatch run --link FD`` child on one end of a socket pair.

    Implements `ingest.fanout.Link`: frames go over the pair, `restart` starts a new child.
    """

    def __init__(self, index: int, command: list[str], env: dict[str, str]) -> None:
        self.index = index
        self.command = command
        self.env = env
        self.starts = 0
        self.pause = _PAUSE_MIN
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.started_at = 0.0
        self.start()

    def start(self) -> None:
        """Start the child with its end of a new socket pair."""
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        command = [*self.command, "--link", str(fd)]
        self.proc = subprocess.Popen(command, env=self.env, pass_fds=[fd])
        theirs.close()
        self.conn = Connection(mine.detach())
        self.started_at = time.monotonic()
        self.starts += 1
        log.info("worker %d started (pid %d)", self.index, self.proc.pid)

    def ready(self) -> None:
        """Wait until the worker said `READY` (it died, or `_READY_WAIT` passed: go on).

        Taking its first frame here keeps it out of the replies the fan-out reads. A worker
        that died meanwhile is found dead, and started again, by the fan-out.
        """
        assert self.conn is not None
        try:
            if self.conn.poll(_READY_WAIT) and self.conn.recv_bytes() == READY:
                log.info("worker %d ready", self.index)
                return
        except (OSError, EOFError):
            return
        log.warning("worker %d not ready after %g s; going on", self.index, _READY_WAIT)

    def send(self, frame: bytes) -> None:
        """Send one frame to the worker."""
        assert self.conn is not None
        self.conn.send_bytes(frame)

    def poll(self, timeout: float) -> bool:
        """Whether a reply (or the link's end) is waiting, after at most `timeout` s."""
        assert self.conn is not None
        return self.conn.poll(timeout)

    def recv(self) -> bytes:
        """The next reply (`EOFError` once the worker is gone)."""
        assert self.conn is not None
        try:
            return self.conn.recv_bytes()
        except OSError as exc:  # killed with our frame unread: the connection was reset
            raise EOFError(str(exc)) from exc

    def alive(self) -> bool:
        """Whether the worker process runs."""
        return self.proc is not None and self.proc.poll() is None

    def restart(self) -> None:
        """Start the worker again after a pause; `WorkerFailed` if it never got going."""
        assert self.proc is not None and self.conn is not None
        try:
            code = self.proc.wait(_GRACE)
        except subprocess.TimeoutExpired:  # its link closed, yet it hangs on
            self.proc.kill()
            code = self.proc.wait()
        self.conn.close()
        ran = time.monotonic() - self.started_at
        if self.starts == 1 and ran < _START_UP and code > 0:
            raise WorkerFailed(f"worker {self.index} exited at start-up with status {code}")
        if ran >= _STEADY:
            self.pause = _PAUSE_MIN
        why = _describe(code)
        log.warning("worker %d exited with %s; restarting it in %g s", self.index, why, self.pause)
        time.sleep(self.pause)
        self.pause = min(self.pause * 2, _PAUSE_MAX)
        self.start()
        self.ready()

    def close(self) -> None:
        """Close the link: the worker commits what it has, saves and exits."""
        if self.conn is not None:
            self.conn.close()

    def wait(self, deadline: float) -> None:
        """Wait for the worker to exit until `deadline` (monotonic), then kill it."""
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker %d did not stop within %g s: killed", self.index, _GRACE)
            self.proc.kill()
            self.proc.wait()


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


class Reader:
    """The reading side of ``--workers``: subscriber, fan-out, workers and ``/metrics``."""

    def __init__(self, settings: Settings, count: int, config_file: Path | None) -> None:
        self.settings = settings
        command = [sys.executable, "-m", "meshwatch"]
        if config_file is not None:
            command += ["--config", str(config_file)]
        command.append("run")
        mqtt, port = settings.mqtt, settings.http.port
        self.workers = [
            WorkerProcess(k, command, worker_env(os.environ, k, count, mqtt.client_id, port))
            for k in range(count)
        ]
        self.metrics = IngestMetrics()
        self.fanout = FanOut(TopicTemplate.parse(mqtt.topic), self.workers, self.metrics)
        self.subscriber = Subscriber(mqtt, settings.ingest, self.fanout, ahead=1)
        self.stop = threading.Event()
        self.http: MetricsServer | None = None
        if port:
            try:
                self.http = http.serve(settings.http, self.metrics.registry, self.health)
            except ConfigError:
                self.close()
                raise

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy while connected and subscribed, with every worker running."""
        s = self.subscriber
        running = [w.alive() for w in self.workers]
        return s.connected and s.subscribed and all(running), {
            "mqtt_connected": s.connected,
            "subscribed": s.subscribed,
            "backpressure": s.backpressure,
            "workers_running": sum(running),
        }

    def run(self) -> None:
        """Read and fan out until `stop` is set; then let the workers finish and exit.

        The broker is read only once every worker is ready (they start side by side).
        """
        if self.http is not None:
            self.http.start()
        try:
            for w in self.workers:
                w.ready()
            run_source(self.subscriber, self.stop)
        finally:
            self.close()

    def close(self) -> None:
        """Close the links, wait for the workers (at most `_GRACE` s), free the port."""
        for w in self.workers:
            w.close()
        deadline = time.monotonic() + _GRACE
        for w in self.workers:
            w.wait(deadline)
        if self.http is not None:
            self.http.close()


def run(settings: Settings, count: int, config_file: Path | None) -> None:
    """Read the broker with `count` workers until SIGTERM or SIGINT.

    With ``amqp.urls`` the process is one instance of a cluster and runs alone: the broker
    spreads the partitions over instances, so more cores take more instances, each with
    its own ``mqtt.client_id`` (docs/scaling.md).
    """
    if settings.amqp.urls:
        from meshwatch import app

        log.info("amqp.urls set: one process, taking its share of the partitions")
        app.run(settings)
        return
    reader = Reader(settings, count, config_file)
    stop_on_signals(reader.stop)
    log.info(
        "meshwatch run: %s on %s:%d, %d workers, each owning a partition of the assets",
        settings.mqtt.topic,
        settings.mqtt.host,
        settings.mqtt.port,
        count,
    )
    reader.run()
