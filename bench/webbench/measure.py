"""The four measurements of the console (see the package docstring for the method)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from benchcommon.base import memory_mib
from benchcommon.publisher import connected_publisher
from starlette.testclient import TestClient

from ingest.settings import MqttSettings
from meshwatch.localservers import Mosquitto
from meshwatch.settings import load_settings
from meshwatch.web.actions import Actions
from meshwatch.web.app import Console, create_app
from meshwatch.web.fleet import Fleet
from meshwatch.web.history import EmbeddedHistory
from meshwatch.web.serve import WebServer

from .fleet import ASSETS_PER_SITE, SITES, health, large_fleet, write_asset_history

_PREFIX = "webbench"
# Seconds the console subprocess may take to start and to hear the whole retained map.
_START_S = 60.0


@dataclass(frozen=True, slots=True)
class Timings:
    """Repeated measurements of one thing, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        """The middle sample."""
        return statistics.median(self.samples)

    @property
    def worst(self) -> float:
        """The slowest sample: what the goal is judged on."""
        return max(self.samples)


def _time_gets(http: TestClient, path: str, repeats: int, expect: str) -> Timings:
    """Time `repeats` GETs of `path` after one warm-up (templates compiled, caches filled)."""
    first = http.get(path)
    if first.status_code != 200 or expect not in first.text:
        raise RuntimeError(f"GET {path}: {first.status_code} {first.text[:200]}")
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        http.get(path)
        samples.append(time.perf_counter() - began)
    return Timings(samples)


def _console(data_dir: Path, fleet: Fleet) -> TestClient:
    """A read-only console's app over `fleet` and the store in `data_dir`, in process."""
    actions = Actions(MqttSettings(prefix=_PREFIX))
    console = Console(fleet, actions, EmbeddedHistory(data_dir / "meshwatch.db"), None)
    return TestClient(create_app(console, "bench-secret"), base_url="http://bench")


def fleet_page(workdir: Path, repeats: int) -> Timings:
    """Server time of ``GET /`` with the large fleet in memory."""
    fleet = Fleet()
    fleet.broker(True)
    for doc in large_fleet():
        fleet.health(doc)
    with _console(workdir, fleet) as http:
        return _time_gets(http, "/", repeats, f'data-asset="site-{SITES - 1:02d}/')


def asset_page(workdir: Path, repeats: int) -> tuple[Timings, int]:
    """Server time of ``GET /assets/...`` over 6 h of 1 Hz data; and the rows written."""
    data_dir = workdir / "asset"
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = write_asset_history(data_dir, "site-00", "asset-00", time.time_ns())
    fleet = Fleet()
    fleet.broker(True)
    fleet.health(health(0, 0, "critical"))
    with _console(data_dir, fleet) as http:
        timings = _time_gets(http, "/assets/site-00/asset-00", repeats, 'class="chart"')
    return timings, rows


def _retained(broker: Mosquitto, docs: list[dict[str, Any]]) -> None:
    """Publish each health message retained at QoS 1, as the pipeline does; wait for PUBACKs."""
    client = connected_publisher(broker.host, broker.port, "", 1000)
    try:
        infos = [
            client.publish(
                f"{_PREFIX}/health/{d['site']}/{d['asset']}", orjson.dumps(d), qos=1, retain=True
            )
            for d in docs
        ]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()


def live_update(broker: Mosquitto, workdir: Path, changes: int) -> Timings:
    """Seconds from publishing a health change to its ``health`` event on ``/events``."""
    settings = load_settings(
        data_dir=workdir / "live",
        mqtt={"host": broker.host, "port": broker.port, "prefix": _PREFIX},
    )
    server = WebServer(settings, read_only=True, host="127.0.0.1", port=0)
    server.start()
    arrived: dict[str, float] = {}
    ready = threading.Event()
    finished = threading.Event()
    try:
        with httpx.stream("GET", server.address + "/events", timeout=30) as events:

            def read() -> None:
                for line in events.iter_lines():
                    if line.startswith("data:"):
                        ready.set()
                        doc = orjson.loads(line.removeprefix("data:"))
                        if "reason" in doc:
                            arrived.setdefault(doc["reason"], time.perf_counter())
                    if finished.is_set():
                        return  # this thread leaves the stream, so the server can stop

            reader = threading.Thread(target=read, name="sse", daemon=True)
            reader.start()
            if not ready.wait(10):
                raise RuntimeError("no first event on /events within 10 s")
            samples = []
            for n in range(changes):
                doc = {**health(0, 0, "critical" if n % 2 == 0 else "ok"), "reason": f"c{n}"}
                sent = time.perf_counter()
                _retained(broker, [doc])
                deadline = sent + 10
                while doc["reason"] not in arrived and time.perf_counter() < deadline:
                    time.sleep(0.001)
                if doc["reason"] not in arrived:
                    raise RuntimeError(f"change {n} did not reach /events within 10 s")
                samples.append(arrived[doc["reason"]] - sent)
            finished.set()
            _retained(broker, [health(0, 0, "ok")])  # one more event: the reader sees it is over
            reader.join(10)
    finally:
        server.stop()
    return Timings(samples)


def memory(broker: Mosquitto, workdir: Path, loads: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB of a ``meshwatch web`` holding the large fleet."""
    assets = SITES * ASSETS_PER_SITE
    _retained(broker, large_fleet())
    env = {
        **os.environ,
        "MESHWATCH_DATA_DIR": str(workdir / "memory"),
        "MESHWATCH_MQTT__HOST": broker.host,
        "MESHWATCH_MQTT__PORT": str(broker.port),
        "MESHWATCH_MQTT__PREFIX": _PREFIX,
    }
    command = [sys.executable, "-m", "meshwatch", "web", "--read-only", "--port", "0"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as web:
        try:
            assert web.stdout is not None
            line = web.stdout.readline()
            if not line.startswith("meshwatch web: serving on "):
                raise RuntimeError(f"meshwatch web did not start: {line!r}")
            address = line.rsplit(" ", 1)[1].strip()
            deadline = time.monotonic() + _START_S
            while httpx.get(address + "/", timeout=30).text.count("data-asset=") < assets:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the console did not list {assets} assets in time")
                time.sleep(0.5)
            for _ in range(loads):
                httpx.get(address + "/", timeout=30)
            return memory_mib(web.pid)
        finally:
            web.terminate()
            web.wait(15)
