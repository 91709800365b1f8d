"""`InProcessBroker`: amqtt running in a thread of this process, when mosquitto is missing.

The demo's broker on a machine without mosquitto (``pip install amqtt``). amqtt speaks MQTT
3.1.1 only, queues in memory and takes ~1,400 QoS 1 messages/s here: enough for the demo,
not for tests of delivery guarantees, which use mosquitto.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

from meshwatch.localservers.base import _Server
from meshwatch.localservers.errors import MissingBinaryError, ServerError
from meshwatch.localservers.process import LOCALHOST, free_port

# How long the broker may take to listen once its thread started.
_START_SECONDS = 10.0


def available() -> bool:
    """Whether amqtt is installed."""
    return importlib.util.find_spec("amqtt") is not None


class InProcessBroker(_Server):
    """An amqtt broker on a free port of 127.0.0.1, in a daemon thread with its own loop."""

    def __init__(self, port: int | None = None) -> None:
        self._port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    def start(self) -> None:
        """Start the broker and wait until it listens."""
        if not available():
            raise MissingBinaryError("amqtt is not installed (pip install amqtt), nor mosquitto")
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{LOCALHOST}:{self._port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        started = threading.Event()
        failed: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._broker = Broker(config, loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to the caller of start()
                failed.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="amqtt", daemon=True)
        self._thread.start()
        if not started.wait(_START_SECONDS) or failed:
            reason = failed[0] if failed else "no answer"
            raise ServerError(f"amqtt did not start on {LOCALHOST}:{self._port}: {reason}")

    def stop(self, timeout: float = 10) -> None:
        """Shut the broker down and end its thread."""
        if self._thread is None or self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._thread = None
