"""A server as a child process: free ports, executables, start-up, readiness and stopping.

`_Process` owns one child and its log file; `Mosquitto` and `VictoriaMetrics` each hold one.
The probes (`_tcp_accepts`, `_http_get`, `_check_port_free`) only ever look at 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from meshwatch.localservers.errors import MissingBinaryError, ServerError

LOCALHOST = "127.0.0.1"
# enough for the last few dozen log lines, which is where a server says why it failed to start
_LOG_TAIL_BYTES = 4000
_SBIN_DIRS = (Path("/usr/sbin"), Path("/usr/bin"), Path("/usr/local/sbin"), Path("/usr/local/bin"))


def free_port(span: int = 1) -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago, with the next ``span - 1``.

    Another process may take it before the caller binds it; the servers check again when they
    start (`_check_port_free`). A ``span`` is for a server that also binds the ports after its
    own (``meshwatch run --workers N``: worker k on ``http.port + 1 + k``).

    Returns
    -------
    int
        A port the kernel handed out for ``bind(("127.0.0.1", 0))``.

    Examples
    --------
    >>> port = free_port()
    >>> isinstance(port, int) and 0 < port < 65536
    True
    >>> 0 < free_port(span=3) < 65534
    True
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port = int(sock.getsockname()[1])
        if port + span <= 65536 and all(_bindable(port + k) for k in range(1, span)):
            return port
    raise ServerError(f"no {span} free TCP ports in a row on {LOCALHOST}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


def find_binary(name: str, *, package: str | None = None) -> Path:
    """Locate an executable on ``PATH`` or in the usual system directories.

    Parameters
    ----------
    name : str
        Executable name, e.g. ``"mosquitto"``.
    package : str, optional
        Debian package that provides it, named in the error message (default: ``name``).

    Returns
    -------
    Path
        Absolute path of the executable.

    Raises
    ------
    MissingBinaryError
        If it is not installed; the message says how to install it.
    """
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    for directory in _SBIN_DIRS:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pkg = package or name
    raise MissingBinaryError(f"{name} not found on PATH: run scripts/ensure-tools {pkg}")


def _log_tail(log_path: Path) -> str:
    """Return the last few KB of a log file, or a note that there is none."""
    try:
        with log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _LOG_TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return f"(no log at {log_path})"
    return text or f"(empty log at {log_path})"


def _run_tool(args: list[str], what: str) -> None:
    """Run a helper command; raise ServerError with its output when it fails."""
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise ServerError(f"{what} failed (exit {result.returncode}): {output}")


class _Process:
    """A server child process with its log file; shared by the launchers."""

    def __init__(self, name: str, log_path: Path) -> None:
        self._name = name
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def log_since_start(self) -> str:
        """Return what the process logged since the last ``spawn``."""
        try:
            with self._log_path.open("rb") as fh:
                fh.seek(self._log_start)
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        if self.running:
            raise ServerError(f"{self._name} is already running")
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("ab")
        self._log_start = self._log.seek(0, os.SEEK_END)
        self._log.write(f"--- meshwatch: starting {' '.join(args)}\n".encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in a terminal reaches us, not the server
                env=env,
            )
        except OSError as exc:
            self._close_log()
            raise ServerError(f"cannot run {args[0]}: {exc}") from exc

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                self.reap()
                raise ServerError(
                    f"{self._name} exited (code {code}) before {what}; "
                    f"log {self._log_path}:\n{_log_tail(self._log_path)}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise ServerError(
                    f"{self._name} did not get ready ({what}) within {timeout:g} s; "
                    f"log {self._log_path}:\n{_log_tail(self._log_path)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.reap()

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.reap()

    def signal_group(self, signum: int, wait: float | None = None) -> None:
        """Send `signum` to the child's whole process group (a server with helper processes).

        With `wait`, wait that long for the child to exit, then SIGKILL the group; without,
        wait for the exit (use with SIGKILL).
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.reap()

    def reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _tcp_accepts(host: str, port: int) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_get(url: str) -> str | None:
    """Return the body of ``GET url`` if it answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if int(response.status) != 200:
                return None
            return bytes(response.read()).decode("utf-8", errors="replace")
    except OSError:  # URLError and HTTPError are OSErrors
        return None


def _check_port_free(name: str, port: int) -> None:
    """Raise ServerError if something already listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # like the servers themselves: ignore connections of a previous run in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError as exc:
            raise ServerError(
                f"cannot start {name}: port {port} on {LOCALHOST} is in use ({exc.strerror}); "
                "pass another port or none to get a free one"
            ) from exc
