"""Real local servers (mosquitto, VictoriaMetrics) for tests, the demo and benchmarks.

Each server runs as a child process on a free port of 127.0.0.1, keeps its configuration, log
and data in a working directory of its own, and is stopped by the caller (or by leaving its
``with`` block). Nothing here talks to a server the user already runs.

The settings follow what was measured on this stack (see ``DESIGN.md``): mosquitto is started
with an unlimited queue (``max_queued_messages 0``), persistence saved every second and 1,000
messages in flight, because its defaults silently drop QoS 1 messages; VictoriaMetrics keeps
every timestamp (``-retentionPeriod=100y``) and drops exact duplicates
(``-dedup.minScrapeInterval=1ms``).

Examples
--------
>>> from pathlib import Path
>>> def roundtrip(workdir: Path) -> None:
...     with Mosquitto(workdir / "broker") as broker, VictoriaMetrics(workdir / "tsdb") as vm:
...         print(broker.host, broker.port, vm.url)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypedDict, cast

__all__ = [
    "ExportedSeries",
    "MissingBinaryError",
    "Mosquitto",
    "ServerError",
    "TlsFiles",
    "VictoriaMetrics",
    "find_binary",
    "free_port",
    "make_password_file",
    "make_test_certificates",
]

LOCALHOST = "127.0.0.1"
_LOG_TAIL_BYTES = 4000
_SBIN_DIRS = (Path("/usr/sbin"), Path("/usr/bin"), Path("/usr/local/sbin"), Path("/usr/local/bin"))


class ServerError(RuntimeError):
    """A local server could not be found, started or used; the message says what to do."""


class MissingBinaryError(ServerError):
    """The executable a server or helper needs is not installed."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener.

    Attributes
    ----------
    ca : Path
        Certificate of the authority that signed ``cert``; clients verify against it.
    cert : Path
        Server certificate.
    key : Path
        Unencrypted private key of ``cert``.
    """

    ca: Path
    cert: Path
    key: Path


class ExportedSeries(TypedDict):
    """One series as returned by VictoriaMetrics' ``/api/v1/export`` (one JSON line).

    Attributes
    ----------
    metric : dict of str to str
        Labels, the metric name under ``__name__``.
    values : list of float
        Sample values, oldest first.
    timestamps : list of int
        Sample times in milliseconds since the epoch, one per value.
    """

    metric: dict[str, str]
    values: list[float]
    timestamps: list[int]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Returns
    -------
    int
        A port the kernel handed out for ``bind(("127.0.0.1", 0))``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


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
    """A server child process with its log file; shared by the launchers below."""

    def __init__(self, name: str, log_path: Path) -> None:
        self._name = name
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_since_start(self) -> str:
        """Return what the process logged since the last ``spawn``."""
        try:
            with self._log_path.open("rb") as fh:
                fh.seek(self._log_start)
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def spawn(self, args: list[str]) -> None:
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


class _LocalServer:
    """What every local server shares: its port, its process, how it stops and restarts."""

    _port: int
    _process: _Process

    @property
    def host(self) -> str:
        """Address the server listens on (``"127.0.0.1"``)."""
        return LOCALHOST

    @property
    def port(self) -> int:
        """TCP port; it stays the same across restarts."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process.running

    def start(self) -> None:
        """Start the server and wait until it is ready."""
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        """Stop with SIGTERM (the server saves its data), SIGKILL after ``timeout`` seconds."""
        self._process.stop(timeout)

    def kill(self) -> None:
        """Kill with SIGKILL: a crash; the server keeps only what it had saved."""
        self._process.kill()

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Mosquitto(_LocalServer):
    """A mosquitto broker on 127.0.0.1, configured not to lose QoS 1 messages.

    ``start()`` writes ``workdir/mosquitto.conf`` and runs ``mosquitto -c`` on it; the broker
    logs to ``workdir/mosquitto.log`` and persists its sessions and queues in ``workdir``
    (saved every second and on SIGTERM), so ``restart()`` keeps persistent sessions.

    Mosquitto 2.0.11 saves only the sessions whose latest CONNECT had ``clean_start=False``:
    an MQTT 5 session opened with a clean start and a session expiry interval lives on while
    the broker runs but is gone after a restart (measured: 0 of 3,000 queued messages came
    back). paho's default for MQTT 5 (``MQTT_CLEAN_START_FIRST_ONLY``) is such a clean start,
    so a subscriber that needs its queue to survive a broker restart connects with
    ``clean_start=False`` every time.

    Parameters
    ----------
    workdir : Path
        Directory for the configuration, the log and the persistence file (created).
    port : int, optional
        TCP port; a free one by default. It stays the same across restarts.
    password_file : Path, optional
        A ``mosquitto_passwd`` file (see `make_password_file`); anonymous clients are then
        refused.
    acl_file : Path, optional
        ACL file, used only together with ``password_file``.
    tls : TlsFiles, optional
        Serve MQTT over TLS with these files (clients need no certificate).
    extra_conf : str
        Lines appended to the configuration verbatim. Keep ``log_dest`` as is: `start` reads
        the log to tell that the broker listening on the port is this one.

    Examples
    --------
    >>> def publish_one(workdir: Path) -> None:
    ...     with Mosquitto(workdir) as broker:
    ...         print(f"mqtt://{broker.host}:{broker.port}")
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        extra_conf: str = "",
    ) -> None:
        if acl_file is not None and password_file is None:
            raise ValueError("acl_file needs password_file")
        self.workdir = Path(workdir).resolve()
        self._port = port if port is not None else free_port()
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.extra_conf = extra_conf
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._process = _Process("mosquitto", self.log_path)

    def config_text(self) -> str:
        """Return the configuration ``start()`` writes.

        Returns
        -------
        str
            The text of ``mosquitto.conf``.
        """
        lines = [
            "# written by meshwatch.localservers",
            "per_listener_settings false",
            f"listener {self._port} {LOCALHOST}",
        ]
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca.resolve()}",
                f"certfile {self.tls.cert.resolve()}",
                f"keyfile {self.tls.key.resolve()}",
                "require_certificate false",
            ]
        if self.password_file is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {self.password_file.resolve()}"]
            if self.acl_file is not None:
                lines.append(f"acl_file {self.acl_file.resolve()}")
        lines += [
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            # the default (1000 per client, connected or not) silently drops QoS 1 messages
            "max_queued_messages 0",
            "memory_limit 1073741824",
            "max_inflight_messages 1000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # as root, mosquitto would switch to the "mosquitto" user, who cannot write workdir
            lines.append("user root")
        if self.extra_conf:
            lines.append(self.extra_conf.rstrip("\n"))
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Write the configuration, start the broker and wait until its port accepts.

        Raises
        ------
        MissingBinaryError
            If mosquitto is not installed.
        ServerError
            If it exits or does not accept connections within 10 s (the log tail is included).
        """
        binary = find_binary("mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config_text(), encoding="utf-8")
        _check_port_free("mosquitto", self._port)
        self._process.spawn([str(binary), "-c", str(self.conf_path)])
        self._process.wait_ready(self._ready, 10.0, f"accepting connections on port {self._port}")

    def _ready(self) -> bool:
        """Return whether this broker (not another process) accepts connections."""
        logged = self._process.log_since_start()
        ours = any(line.rstrip().endswith(" running") for line in logged.splitlines())
        return ours and _tcp_accepts(LOCALHOST, self._port)


def make_test_certificates(dir: Path) -> TlsFiles:
    """Create a throwaway CA and a server certificate for ``localhost`` and 127.0.0.1.

    Both are valid for 2 days; keys are unencrypted P-256 keys.

    Parameters
    ----------
    dir : Path
        Directory for ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key`` (created).

    Returns
    -------
    TlsFiles
        The CA certificate, server certificate and server key.

    Raises
    ------
    MissingBinaryError
        If the ``openssl`` command is not installed.
    ServerError
        If openssl fails.
    """
    openssl = str(find_binary("openssl"))
    dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = dir / "ca.key", dir / "ca.crt"
    key, csr, crt = dir / "server.key", dir / "server.csr", dir / "server.crt"
    ext = dir / "server.ext"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_tool(
        [openssl, "req", "-x509", *newkey, "-keyout", str(ca_key), "-out", str(ca_crt),
         "-days", "2", "-subj", "/CN=meshwatch test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        "openssl (CA certificate)",
    )  # fmt: skip
    _run_tool(
        [openssl, "req", "-new", *newkey, "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=localhost"],
        "openssl (server key)",
    )  # fmt: skip
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="utf-8",
    )
    _run_tool(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)],
        "openssl (server certificate)",
    )  # fmt: skip
    for private in (ca_key, key):
        private.chmod(0o600)
    return TlsFiles(ca=ca_crt, cert=crt, key=key)


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """Write a mosquitto password file with ``mosquitto_passwd -b``.

    Parameters
    ----------
    path : Path
        File to create (replaced if it exists).
    users : dict of str to str
        User name to clear-text password; at least one.

    Returns
    -------
    Path
        ``path``, mode 0700.

    Raises
    ------
    ValueError
        If ``users`` is empty.
    MissingBinaryError
        If ``mosquitto_passwd`` is not installed.
    ServerError
        If ``mosquitto_passwd`` fails.
    """
    if not users:
        raise ValueError("make_password_file needs at least one user")
    tool = str(find_binary("mosquitto_passwd", package="mosquitto"))
    path.parent.mkdir(parents=True, exist_ok=True)
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        _run_tool([tool, *create, "-b", str(path), user, password], f"mosquitto_passwd ({user})")
        path.chmod(0o700)  # newer mosquitto_passwd versions warn about group/world access
    return path


class VictoriaMetrics(_LocalServer):
    """A single-node VictoriaMetrics on 127.0.0.1, the InfluxDB write target of the tests.

    It runs with ``-retentionPeriod=100y`` (the default month silently drops older samples:
    replays and backfills) and ``-dedup.minScrapeInterval=1ms`` (a redelivered point is stored
    once); data lives in ``workdir/data``, the log in ``workdir/victoria-metrics.log``.

    Parameters
    ----------
    workdir : Path
        Directory for the data and the log (created).
    port : int, optional
        HTTP port; a free one by default. It stays the same across restarts.

    Notes
    -----
    Measured with VictoriaMetrics 1.79 and influxdb-client 1.50, writing through
    ``InfluxDBClient(url=vm.url, token="x", org="o").write_api(write_options=SYNCHRONOUS)``
    (``POST /api/v2/write``):

    - Each field becomes the series ``<measurement>_<field>``; the tags become labels and
      nothing else is added: the line ``telemetry,site=s1,asset=a1 temp=1.5 <ns>`` is
      exported as ``{"__name__": "telemetry_temp", "site": "s1", "asset": "a1"}``. Bucket,
      org and token are ignored (no ``db`` label on the v2 API; only the v1 ``/write?db=x``
      adds ``db="x"``).
    - Timestamps are kept in milliseconds: nanoseconds are truncated (``...123456789`` reads
      back as ``...123``), so two readings less than 1 ms apart are one sample after dedup.
      The write precision (s, ms, ns) is honoured.
    - Integers and booleans read back as floats (``3i`` as 3, ``true`` as 1); a string field
      does not keep its text: it becomes a series with value 0.
    - A write is not readable at once. Without a flush, a new series took ~10 s to appear in
      exports and a new sample of a known series ~1 s; after ``/internal/force_flush``
      (`flush`, which `export` calls first) both appear immediately.
    - Durability: SIGTERM (`stop`) saves everything. SIGKILL (`kill`) loses samples written
      in the last ~5 s, even after a force_flush.
    - Two writes of the same series and millisecond: with the dedup flag one sample is kept,
      but which value wins is arbitrary (about half first, half last, in one request or
      two), so only identical rewrites are safely idempotent. Without the flag both are kept.
    - Instant queries look back only 5 minutes from now: old timestamps need exports or a
      long range such as ``last_over_time(x[3650d])``.

    Examples
    --------
    >>> def write_and_read(workdir: Path) -> None:
    ...     with VictoriaMetrics(workdir) as vm:
    ...         print(vm.export('telemetry_temp{site="s1"}'))
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self._port = port if port is not None else free_port()
        self.data_path = self.workdir / "data"
        self.log_path = self.workdir / "victoria-metrics.log"
        self._process = _Process("victoria-metrics", self.log_path)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8428``; also the InfluxDB client's ``url``."""
        return f"http://{LOCALHOST}:{self._port}"

    def start(self) -> None:
        """Start the server and wait until ``/health`` answers 200.

        Raises
        ------
        MissingBinaryError
            If victoria-metrics is not installed.
        ServerError
            If it exits or is not healthy within 20 s (the log tail is included).
        """
        binary = find_binary("victoria-metrics")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _check_port_free("victoria-metrics", self._port)
        self._process.spawn(
            [
                str(binary),
                f"-httpListenAddr={LOCALHOST}:{self._port}",
                f"-storageDataPath={self.data_path}",
                "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",
                "-loggerLevel=ERROR",
            ]
        )
        self._process.wait_ready(self._ready, 20.0, f"answering {self.url}/health")

    def _ready(self) -> bool:
        """Return whether this server (not another process) answers ``/health``."""
        if _http_get(f"{self.url}/health") is None:
            return False
        flags = _http_get(f"{self.url}/flags") or ""
        return f'-storageDataPath="{self.data_path}"' in flags.splitlines()

    def flush(self) -> None:
        """Make everything written so far visible to queries (``/internal/force_flush``).

        Raises
        ------
        ServerError
            If the server does not answer.
        """
        self._request("/internal/force_flush")

    def export(self, selector: str) -> list[ExportedSeries]:
        """Flush, then return every sample of the series matching ``selector``.

        Parameters
        ----------
        selector : str
            A series selector, e.g. ``'telemetry_temp{site="s1"}'`` or
            ``'{__name__=~"telemetry_.*"}'``.

        Returns
        -------
        list of ExportedSeries
            One entry per series, in no particular order; timestamps in milliseconds.

        Raises
        ------
        ServerError
            If the server does not answer or rejects the selector.
        """
        self.flush()
        form = urllib.parse.urlencode({"match[]": selector}).encode()
        body = self._request("/api/v1/export", form)
        return [
            cast(ExportedSeries, json.loads(line)) for line in body.splitlines() if line.strip()
        ]

    def _request(self, path: str, data: bytes | None = None) -> str:
        """GET (or POST a form to) ``path`` and return the body as text."""
        url = f"{self.url}{path}"
        try:
            with urllib.request.urlopen(url, data=data, timeout=30) as response:
                return bytes(response.read()).decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()
            raise ServerError(f"{url}: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ServerError(f"{url}: {exc}") from exc
