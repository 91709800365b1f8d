"""Running the console: build its parts from the settings, serve them with uvicorn.

`WebServer` binds its socket first (so port 0 works and the address is known before the
start-up line), then serves on the caller's thread (`serve`, ``meshwatch web``) or on one
of its own (`start`, the demo).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from pathlib import Path

import uvicorn

from ingest.query import open_reader
from meshwatch.errors import ConfigError
from meshwatch.settings import Settings
from meshwatch.web.actions import Actions
from meshwatch.web.app import Console, create_app
from meshwatch.web.auth import Users
from meshwatch.web.fleet import Fleet, FleetFeed
from meshwatch.web.history import History, StoreHistory

log = logging.getLogger(__name__)

# 32 random bytes for the session signing key (hex): itsdangerous's HMAC-SHA1 needs no more.
_SECRET_BYTES = 32
# Seconds open /events streams get to end when the server stops.
_GRACE = 2

#: What ``meshwatch web`` says without a users file.
NO_USERS = (
    "no users file: set web.users_file (add users with meshwatch web adduser NAME "
    "--role maintainer --users-file FILE), or start with --read-only"
)


class ListenError(ConfigError):
    """The console's address cannot be listened on (in use, not local, not allowed)."""


def secret(path: Path) -> str:
    """The session signing key in `path`, made (mode 0600) when missing."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read web.secret_file {path}: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(_SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another console made it just now
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(f"cannot create web.secret_file {path}: {exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
    return value


def users(settings: Settings, read_only: bool) -> Users | None:
    """The users, or None in read-only mode; `ConfigError` when neither is possible."""
    path = settings.web.users_file
    if read_only:
        return None
    if path is None:
        raise ConfigError(NO_USERS)
    if not path.is_file():
        raise ConfigError(f"web.users_file {path} does not exist (meshwatch web adduser makes it)")
    loaded = Users.load(path)
    if not loaded.users:
        raise ConfigError(f"web.users_file {path} has no users (meshwatch web adduser adds one)")
    return loaded


def history(settings: Settings) -> History:
    """The store the pipeline writes: InfluxDB when ``influx.url`` is set, else embedded."""
    return StoreHistory(open_reader(settings.influx, settings.data_dir))


class WebServer:
    """The console on a bound socket, with its broker feed.

    Parameters
    ----------
    settings
        ``web.*`` for the users and the key, ``mqtt.*`` for the broker, the store's settings.
    read_only
        Serve without users: nobody logs in, nobody acts.
    host, port
        Where to listen (``web.host`` and ``web.port`` when None; port 0: any free port).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        read_only: bool,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        known = users(settings, read_only)
        key = secret(settings.web.secret_file or settings.data_dir / "web-secret")
        self.fleet = Fleet()
        self.feed = FleetFeed(settings.mqtt, self.fleet)
        console = Console(self.fleet, Actions(settings.mqtt), history(settings), known)
        self.app = create_app(console, key)
        host = host or settings.web.host
        port = settings.web.port if port is None else port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)
        except OSError as exc:
            self.socket.close()
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound = self.socket.getsockname()
        self.address = f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{bound[1]}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACE,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        """Serve on this thread until SIGINT or SIGTERM (uvicorn's handlers), after one line."""
        print(f"meshwatch web: serving on {self.address}", flush=True)
        self.feed.start()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._close()

    def start(self) -> None:
        """Serve from a thread of its own (uvicorn installs no signal handler there)."""
        self.feed.start()
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="web", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop a server started with `start`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(_GRACE + 5)
        self._close()

    def _close(self) -> None:
        self.feed.stop()
        self.socket.close()
