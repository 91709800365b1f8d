"""`_LocalServer`: what every local server shares (its port, its process, stop and restart).

A subclass sets ``_port`` and ``_process`` in its ``__init__`` and implements `start`, which
spawns the process and waits until the server is ready.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from meshwatch.localservers.process import LOCALHOST, _Process


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
