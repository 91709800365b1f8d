"""What local servers share: `_Server` (address, ``with``) and `_LocalServer` (a process).

A `_Server` subclass sets ``_port`` in its ``__init__`` and implements `start`, which waits
until the server is ready, and `stop`. A `_LocalServer` also sets ``_process``, which its
`start` spawns; stopping, killing and restarting come with it.
"""

from __future__ import annotations

from typing import Self

from common.closing import Closing
from meshwatch.localservers.process import LOCALHOST, _Process


class _Server(Closing):
    """A server on a port of 127.0.0.1, started and stopped by a ``with`` block."""

    _port: int

    @property
    def host(self) -> str:
        """Address the server listens on (``"127.0.0.1"``)."""
        return LOCALHOST

    @property
    def port(self) -> int:
        """TCP port; it stays the same across restarts."""
        return self._port

    def start(self) -> None:
        """Start the server and wait until it is ready."""
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        """Stop the server, waiting at most about ``timeout`` seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server (the end of a ``with`` block)."""
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self


class _LocalServer(_Server):
    """A server run as a child process: how it stops, is killed and restarts."""

    _process: _Process

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process.running

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
