"""``meshwatch run`` under test: the real pipeline as a subprocess, with its embedded store.

Each workload gets a fresh data dir and the client ID ``bench-meshwatch``; the HTTP endpoint
binds port 0. The session is created by running meshwatch until it publishes ``online`` on
its status topic (it does so right after subscribing), and the drain is timed by polling the
store (`store.poll_rows`). Afterwards meshwatch is SIGTERMed (it must exit 0), the store is
checked (`store.verify_store`), and the session is resumed to count what meshwatch left
unacked (must be 0) and deleted, so that it does not queue the next workload.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import orjson

from .base import MESHWATCH, Bench, Drain, cpu_delta, cpu_seconds
from .publisher import publish_backlog
from .sessions import Probe, leftover_and_drop
from .store import poll_rows, verify_store
from .workloads import Workload

MESHWATCH_CLIENT_ID = "bench-meshwatch"
#: meshwatch's default ``mqtt.prefix``: it announces itself on ``<prefix>/status/<client id>``.
STATUS_PREFIX = "meshwatch"
#: How long the session check after a drain waits for messages meshwatch left unacked.
LEFTOVER_WAIT_S = 1.0


def _venv_tool(name: str) -> Path | None:
    """The console script ``name`` beside this interpreter (the venv's), else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    return None if found is None else Path(found)


def _stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal a child and wait for it; SIGKILL it if it does not exit within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9
    return proc.returncode


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def spawn_run(binary: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``meshwatch run`` with `env`, its output appended to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(binary), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class MeshwatchRun:
    """Measures ``meshwatch run`` (embedded store).

    Parameters
    ----------
    bench : Bench
        The broker, the work dir (data dirs and logs go there), the console and the
        optional py-spy output dir.
    name : str
        The subscriber name its results carry (`Drain.subscriber`).
    tag : str
        Prefix of its data dirs, logs and profiles in the work dir (``<tag>-<workload>``).
    settings : mapping of str to str, optional
        Extra ``MESHWATCH_*`` environment variables for ``meshwatch run``, on top of the
        benchmark's own (``{"MESHWATCH_MODELS__ENABLED": "false"}`` turns scoring off).

    Raises
    ------
    SystemExit
        If the ``meshwatch`` console script is not installed.
    """

    def __init__(
        self,
        bench: Bench,
        *,
        name: str = MESHWATCH,
        tag: str = "meshwatch",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.bench = bench
        self.name = name
        self.tag = tag
        self.settings = dict(settings or {})
        binary = _venv_tool("meshwatch")
        if binary is None:
            raise SystemExit("meshwatch console script not found: run `make install` first")
        self.binary = binary

    def data_dir(self, workload: Workload) -> Path:
        """The data dir of the drain of ``workload`` (emptied at the start of each drain)."""
        return self.bench.workdir / f"{self.tag}-{workload.name}"

    def drain(self, workload: Workload) -> Drain:
        """Measure ``meshwatch run`` (embedded store) on ``workload``."""
        host, port = self.bench.host, self.bench.port
        data_dir = self.data_dir(workload)
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        log_path = self.bench.workdir / f"{self.tag}-{workload.name}.log"
        env = self._env(data_dir)
        leftover_and_drop(host, port, MESHWATCH_CLIENT_ID, 0.1)  # a session of an earlier run
        self._create_session(env, log_path)
        published = publish_backlog(self.bench, MESHWATCH_CLIENT_ID, workload)
        drain = Drain.of(workload, self.name, published)
        db = data_dir / "meshwatch.db"
        expected = workload.readings
        broker_before = self.bench.broker_cpu()
        started = time.monotonic()
        proc = self._spawn(env, log_path)
        profiler = self._profile(proc.pid, workload.name)
        polls: list[float] = []
        try:
            seen = poll_rows(proc, db, expected, polls)
        finally:
            cpu = cpu_seconds(proc.pid)
            broker_after = self.bench.broker_cpu()
            if profiler is not None:
                _stop(profiler, sig=signal.SIGINT, timeout=30)
            code = _stop(proc, timeout=30)
        if polls:
            drain.notes.append(
                f"count(*) poll: {len(polls)} polls, mean {1000 * sum(polls) / len(polls):.1f} ms,"
                f" max {1000 * max(polls):.1f} ms"
            )
        if not seen.fill(drain, started, expected):
            drain.notes.append(f"exit code {code}; log {log_path}:\n{_tail(log_path)}")
            return drain
        drain.cpu_s = cpu
        drain.broker_cpu_s = cpu_delta(broker_before, broker_after)
        if code != 0:
            drain.checks.append(f"exit code {code} after SIGTERM (expected 0)")
        drain.checks.extend(verify_store(db, data_dir / "deadletters.db", workload))
        leftover = leftover_and_drop(host, port, MESHWATCH_CLIENT_ID, LEFTOVER_WAIT_S)
        if leftover:
            drain.checks.append(f"{leftover} messages still queued/unacked in its session")
        return drain

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHWATCH_")}
        env.update(
            MESHWATCH_DATA_DIR=str(data_dir),
            MESHWATCH_MQTT__HOST=self.bench.host,
            MESHWATCH_MQTT__PORT=str(self.bench.port),
            MESHWATCH_MQTT__CLIENT_ID=MESHWATCH_CLIENT_ID,
            MESHWATCH_HTTP__PORT="0",
        )
        env.update(self.settings)
        return env

    def _spawn(self, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
        return spawn_run(self.binary, env, log_path)

    def _create_session(self, env: dict[str, str], log_path: Path) -> None:
        """Start ``meshwatch run`` until it says online (it has subscribed), then SIGTERM it."""
        watcher = Probe(self.bench.host, self.bench.port, "bench-status-watcher")
        watcher.connect()
        watcher.subscribe(f"{STATUS_PREFIX}/status/{MESHWATCH_CLIENT_ID}")

        def online() -> bool:
            for payload in watcher.payloads:
                try:
                    if orjson.loads(payload).get("status") == "online":
                        return True
                except orjson.JSONDecodeError:
                    pass
            watcher.payloads.clear()
            if proc.poll() is not None:
                raise RuntimeError(
                    f"meshwatch run exited (code {proc.returncode}) before it came online; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            return False

        proc = self._spawn(env, log_path)
        try:
            watcher.loop_until(online, 30, "meshwatch run to say online")
        finally:
            _stop(proc)
            watcher.disconnect(wait=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"meshwatch run exited with {proc.returncode} on SIGTERM after creating its "
                f"session; log {log_path}:\n{_tail(log_path)}"
            )

    def _profile(self, pid: int, name: str) -> subprocess.Popen[bytes] | None:
        """Start ``py-spy record`` on ``pid`` if profiling was asked for."""
        if self.bench.profile_dir is None:
            return None
        pyspy = _venv_tool("py-spy")
        if pyspy is None:
            raise SystemExit("--profile needs py-spy: install it into the venv first")
        self.bench.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.bench.profile_dir / f"{self.tag}-{name}.txt"
        return subprocess.Popen(
            [str(pyspy), "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
             "--rate", "100", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
