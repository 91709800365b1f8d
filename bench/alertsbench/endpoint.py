"""The webhook endpoint: a minimal HTTP/1.1 server in a child process that answers 204.

It is asyncio streams from the standard library, keep-alive, no framework: for each POST it
reads the head and ``Content-Length`` bytes of body, checks ``X-Meshwatch-Signature`` when it
was given the secret, counts, and answers ``204 No Content``. ``GET /stats`` answers the
counts as JSON. It runs as a child process started through the benchmark's own entry point
(``bench/alerts_bench.py --endpoint-child``), so it has a core of its own and the endpoint is not
what is measured; it prints its port as one JSON line when it listens.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from benchcommon.base import cpu_seconds

from alerts.receivers.webhook import sign

#: The script the child runs: the benchmark's own entry point, with ``--endpoint-child``.
_ENTRY = Path(__file__).resolve().parent.parent / "alerts_bench.py"
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def serve(secret: str | None) -> None:
    """Body of the endpoint process: serve on 127.0.0.1, a free port, until killed.

    Parameters
    ----------
    secret : str, optional
        The webhook secret; when given, every POST's signature is checked (``bad`` counts
        those that do not verify).
    """
    asyncio.run(_serve(secret.encode() if secret is not None else None))


async def _serve(secret: bytes | None) -> None:
    stats = {"posts": 0, "bytes": 0, "bad": 0, "unsigned": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, _path, _ = lines[0].split(b" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        key, _, value = line.partition(b":")
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                body = await reader.readexactly(length) if length else b""
                if method == b"POST":
                    stats["posts"] += 1
                    stats["bytes"] += len(body)
                    if secret is not None:
                        given = headers.get(b"x-meshwatch-signature")
                        if given is None:
                            stats["unsigned"] += 1
                        elif not hmac.compare_digest(given.decode(), sign(secret, body)):
                            stats["bad"] += 1
                    writer.write(_NO_CONTENT)
                else:
                    payload = json.dumps(stats).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    async with server:
        await server.serve_forever()


class Endpoint:
    """The endpoint process, seen from the benchmark.

    Parameters
    ----------
    secret : str, optional
        Passed to the child, which then checks every signature.
    """

    def __init__(self, secret: str | None) -> None:
        command = [sys.executable, str(_ENTRY), "--endpoint-child"]
        if secret is not None:
            command += ["--endpoint-secret", secret]
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(5)
            raise RuntimeError(f"the endpoint process exited with {self._proc.returncode}")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}/hooks/meshwatch"

    def stats(self) -> dict[str, Any]:
        """Counts so far: ``posts``, ``bytes``, ``bad`` and ``unsigned`` signatures."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as reply:
            data: dict[str, Any] = json.loads(reply.read())
        return data

    def cpu(self) -> float | None:
        """CPU seconds the endpoint process has used so far."""
        return cpu_seconds(self._proc.pid)

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
