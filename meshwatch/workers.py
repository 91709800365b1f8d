"""``meshwatch run --workers N``: N pipeline processes, each owning a partition of the assets.

Each worker is a whole ``meshwatch run`` (its own broker session ``<client_id>-w<k>``, models,
alert state and deadman in ``<data_dir>/workers/<k>``; the embedded store and the dead
letters shared) that subscribes to all the telemetry and keeps only the assets whose hash
falls to it (`ingest.partition`), acking the others with its batch: their owner has its own
copy in its own session. So acks still follow each worker's own durable commit, in order on
its connection, and an asset is scored by one process only. Plain mosquitto is enough.

The supervisor (this module) starts the workers and restarts one that dies, with a growing
pause; the broker redelivers what the dead worker had not acked, the store takes it once, and
its saved alert state and outbox keep notifications from repeating. A worker that fails at
start-up (a bad setting) stops them all, its one-line error on stderr. SIGTERM or SIGINT
stops every worker cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("meshwatch")

#: A worker that exits this soon after its first start failed to start: no restart.
_START_UP = 10.0
#: Pauses before a restart: doubling from the first to the last, back to the first after a
#: worker has run `_STEADY` seconds.
_PAUSE_MIN, _PAUSE_MAX, _STEADY = 1.0, 30.0, 60.0
#: How long workers get to finish their batch and save after SIGTERM, before SIGKILL.
_GRACE = 30.0
_POLL = 0.2


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_env(
    base: Mapping[str, str], index: int, count: int, client_id: str, http_port: int
) -> dict[str, str]:
    """The environment of worker `index` of `count`: its partition, session and HTTP port.

    Examples
    --------
    >>> env = worker_env({}, 1, 2, "meshwatch-ingest", 9464)
    >>> env["MESHWATCH_INGEST__PARTITION"], env["MESHWATCH_MQTT__CLIENT_ID"]
    ('1/2', 'meshwatch-ingest-w1')
    >>> env["MESHWATCH_HTTP__PORT"], env["MESHWATCH_WORKERS"]
    ('9465', '1')
    """
    return {
        **base,
        "MESHWATCH_INGEST__PARTITION": f"{index}/{count}",
        "MESHWATCH_WORKERS": "1",
        "MESHWATCH_MQTT__CLIENT_ID": f"{client_id}-w{index}",
        "MESHWATCH_HTTP__PORT": str(http_port + index if http_port else 0),
    }


@dataclass
class Worker:
    """One worker process and its restart history."""

    index: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    pause: float = _PAUSE_MIN
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Starts `count` workers, restarts the ones that die, and stops them all on request.

    Parameters
    ----------
    count
        How many workers.
    config_file
        The ``--config`` file the workers read, if any.
    client_id, http_port
        The settings the workers' own are derived from (``-w<k>``, port + k).
    env
        The environment the workers inherit (the supervisor's own by default).
    """

    def __init__(
        self,
        count: int,
        config_file: Path | None,
        client_id: str,
        http_port: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        base = dict(os.environ if env is None else env)
        self.command = [
            sys.executable,
            "-m",
            "meshwatch",
            *(["--config", str(config_file)] if config_file is not None else []),
            "run",
        ]
        self.workers = [
            Worker(k, worker_env(base, k, count, client_id, http_port)) for k in range(count)
        ]
        self.stop = threading.Event()

    def run(self) -> int:
        """Run the workers until `stop` is set; the exit status (a worker's, if one failed)."""
        for w in self.workers:
            self._start(w)
        status = 0
        try:
            while not self.stop.wait(_POLL):
                failed = self._watch()
                if failed is not None:
                    status = failed
                    break
        finally:
            self._stop_all()
        return status

    def _start(self, w: Worker) -> None:
        w.proc = subprocess.Popen(self.command, env=w.env, preexec_fn=_die_with_parent)
        w.started_at = time.monotonic()
        w.starts += 1
        w.restart_at = None
        log.info("worker %d of %d started (pid %d)", w.index, len(self.workers), w.proc.pid)

    def _watch(self) -> int | None:
        """Restart the workers that died; a worker's status if one failed to start."""
        now = time.monotonic()
        for w in self.workers:
            if w.restart_at is not None:
                if now >= w.restart_at:
                    self._start(w)
                continue
            assert w.proc is not None
            code = w.proc.poll()
            if code is None:
                if now - w.started_at >= _STEADY:
                    w.pause = _PAUSE_MIN
                continue
            w.exits.append(code)
            if w.starts == 1 and now - w.started_at < _START_UP and code != -signal.SIGKILL:
                log.error("worker %d exited at start-up with status %d: stopping", w.index, code)
                return code if code > 0 else 1
            log.warning(
                "worker %d exited with %s; restarting it in %g s",
                w.index,
                _describe(code),
                w.pause,
            )
            w.restart_at = now + w.pause
            w.pause = min(w.pause * 2, _PAUSE_MAX)
        return None

    def _stop_all(self) -> None:
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _GRACE
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop within %g s: killed", proc.pid, _GRACE)
                proc.kill()
                proc.wait()


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies (Linux), so no worker is orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(count: int, config_file: Path | None, client_id: str, http_port: int) -> int:
    """Supervise `count` workers until SIGTERM or SIGINT; the exit status."""
    supervisor = Supervisor(count, config_file, client_id, http_port)

    def _stop(signum: int, frame: object) -> None:
        log.info("%s received: stopping the workers", signal.Signals(signum).name)
        supervisor.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("meshwatch run: %d workers, each owning a partition of the assets", count)
    return supervisor.run()
