"""`Mosquitto`: a local broker configured not to lose QoS 1 messages, and its password files.

The broker runs with an unlimited queue (``max_queued_messages 0``), persistence saved every
second and 1,000 messages in flight, because its defaults silently drop QoS 1 messages (see
``docs/design.md`` §12). It can serve TLS with the files of `make_test_certificates`, optionally
requiring client certificates, and refuse anonymous clients with `make_password_file`.
"""

from __future__ import annotations

import os
from pathlib import Path

from meshwatch.localservers.base import _LocalServer
from meshwatch.localservers.process import (
    LOCALHOST,
    _check_port_free,
    _Process,
    _run_tool,
    _tcp_accepts,
    find_binary,
    free_port,
)
from meshwatch.localservers.tls import TlsFiles


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
        Serve MQTT over TLS with these files (clients need no certificate unless
        ``require_certificate``).
    require_certificate : bool
        With ``tls``: refuse clients without a certificate signed by ``tls.ca`` (see
        `make_client_certificate`).
    extra_conf : str
        Lines appended to the configuration verbatim. Keep ``log_dest`` as is: `start` reads
        the log to tell that the broker listening on the port is this one.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        require_certificate: bool = False,
        extra_conf: str = "",
    ) -> None:
        if acl_file is not None and password_file is None:
            raise ValueError("acl_file needs password_file")
        if require_certificate and tls is None:
            raise ValueError("require_certificate needs tls")
        self.workdir = Path(workdir).resolve()
        self._port = port if port is not None else free_port()
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.require_certificate = require_certificate
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

        Examples
        --------
        >>> broker = Mosquitto(Path("/tmp/broker"), port=1883)
        >>> conf = broker.config_text().splitlines()
        >>> conf[2], "max_queued_messages 0" in conf, "allow_anonymous true" in conf
        ('listener 1883 127.0.0.1', True, True)

        >>> tls = TlsFiles(ca=Path("ca.crt"), cert=Path("server.crt"), key=Path("server.key"))
        >>> conf = Mosquitto(Path("/tmp/broker"), tls=tls, require_certificate=True).config_text()
        >>> "require_certificate true" in conf.splitlines()
        True
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
                f"require_certificate {'true' if self.require_certificate else 'false'}",
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
