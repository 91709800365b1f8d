"""The stack the console's browser tests run against: pipeline, console and a live fleet.

A small fleet (an oven and a press at each of three sites) publishes one reading per asset
every `STEP` seconds of wall time, one second of event time apart, from half an hour ago: the
console's charts (the last hours) show it, and every duration of the rules (event time) runs
four times faster than the wall clock. One fault can be turned on: the oven at ``north``
heats past a limit rule's 80 °C, critical at once. The rule's message carries markup the
console must show as text. Alerts repeat every `REPEAT_SECONDS` of event time until acked.

`meshwatch run` and `meshwatch web` run as child processes on the same broker, prefix and
data dir; the console's users (one maintainer, one viewer) are written by
`meshwatch web adduser`, the password read from stdin.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import Message, PipelineProcess, Publisher, Watcher, pipeline_env, wait_for

from meshwatch.localservers import Mosquitto, free_port

SITES = ("north", "south", "east")
ASSETS = (("oven-1", "oven"), ("press-1", "press"))
FAULTY = ("north", "oven-1")
#: Seconds of wall time between two readings of an asset (one second of event time apart).
STEP = 0.25
#: The alerts' repeat interval, in seconds of event time (`STEP` * 10 of wall time).
REPEAT_SECONDS = 10
#: Readings published at once before the fleet goes live: the models' warm-up and more.
WARM_UP = 40

#: Markup in the alert's message: shown as text it is harmless, run it sets `window.mwXss`.
MARKUP = "<img src=x onerror=window.mwXss=1>"

PIPELINE_CONFIG = f"""
alerts:
  rules:
    - name: hot
      type: limit
      severity: critical
      condition: "temp > 80"
      resolve_after: 2
      message: '{MARKUP} {{asset}} at {{site}} is hot: temp {{value:.0f}}'
  route: {{group_interval: 1s, repeat_interval: {REPEAT_SECONDS}s}}
models:
  profiles:
    - name: default
      warmup: 30
      detectors: [{{type: control_chart}}]
"""

_SERVING = re.compile(r"meshwatch web: serving on (http://\S+)")


@dataclass(frozen=True, slots=True)
class User:
    """A console user the stack creates."""

    name: str
    password: str
    role: str


MAINTAINER = User("maint", "correct horse battery", "maintainer")
VIEWER = User("vera", "staple viewer 2026", "viewer")


class Fleet:
    """Readings of every asset, published live from a thread; `fault` turns the fault on."""

    def __init__(self, broker: Mosquitto, unique: str) -> None:
        self.unique = unique
        self.publisher = Publisher(broker)
        self.start_s = int(time.time()) - 1800
        self.step = 0
        self.fault = threading.Event()
        self._rng = random.Random(13)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def readings(self) -> list[tuple[str, bytes]]:
        """The next step's readings (one per asset), advancing event time by a second."""
        ts = (self.start_s + self.step) * 1000
        self.step += 1
        out = []
        for site in SITES:
            for asset, kind in ASSETS:
                if kind == "oven":
                    hot = self.fault.is_set() and (site, asset) == FAULTY
                    metrics = {"temp": (95.0 if hot else 60.0) + self._rng.gauss(0, 0.3)}
                else:
                    metrics = {"pressure": 5.0 + self._rng.gauss(0, 0.05)}
                body = {"ts": ts, "kind": kind, "metrics": metrics}
                out.append((f"{self.unique}/{site}/{asset}/telemetry", orjson.dumps(body)))
        return out

    def warm_up(self, steps: int) -> None:
        """Publish `steps` steps at once and wait for the broker's acknowledgements."""
        for _ in range(steps):
            self.publisher.publish(self.readings())
        self.publisher.wait()

    def start(self) -> None:
        """Go live: a step every `STEP` seconds until `close`."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(STEP):
            self.publisher.publish(self.readings())

    def wait_steps(self, steps: int) -> None:
        """Wait until `steps` more steps (seconds of event time) have been published."""
        target = self.step + steps
        wait_for(lambda: self.step >= target, steps * STEP * 4 + 10, f"{steps} fleet steps")

    def close(self) -> None:
        """Stop publishing and disconnect."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.publisher.close()


class Console:
    """`meshwatch web` as a child process; `url` once it said where it serves."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30) -> None:
        """Start and wait for its line ``meshwatch web: serving on http://HOST:PORT``."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshwatch", "web"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._serving, timeout, "the console's start-up line")

    def _serving(self) -> bool:
        assert self.proc is not None
        found = _SERVING.search(self.log())
        if found is None and self.proc.poll() is not None:
            raise AssertionError(f"meshwatch web exited {self.proc.returncode}:\n{self.log()}")
        if found is not None:
            self.url = found.group(1)
        return found is not None

    def log(self) -> str:
        """What the console printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def add_user(env: dict[str, str], users_file: Path, user: User) -> None:
    """`meshwatch web adduser`, the password on stdin (twice: it may ask to confirm)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshwatch",
            "web",
            "adduser",
            user.name,
            "--role",
            user.role,
            "--users-file",
            str(users_file),
        ],
        input=f"{user.password}\n{user.password}\n".encode(),
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"meshwatch web adduser {user.name} exited {done.returncode}: "
            f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
        )


@dataclass
class Stack:
    """A running pipeline and console, the fleet feeding them and a watcher of the prefix."""

    broker: Mosquitto
    unique: str
    prefix: str
    data_dir: Path
    pipeline: PipelineProcess
    console: Console
    fleet: Fleet
    watcher: Watcher

    @property
    def url(self) -> str:
        """Where the console serves (``http://HOST:PORT``)."""
        return self.console.url

    def notifications(self, alert_id: str) -> list[Message]:
        """The firing notifications of one alert on ``<prefix>/alerts/...``, in order."""
        return [
            m
            for m in self.watcher.on("alerts")
            if m.payload and m.json().get("id") == alert_id and m.json().get("state") == "firing"
        ]

    def fault_alert(self, timeout: float = 30) -> dict[str, Any]:
        """Turn the fault on (if it is not yet) and return its firing alert message."""
        self.fleet.fault.set()

        def firing() -> dict[str, Any] | None:
            for m in self.watcher.on("alerts"):
                body = m.json() if m.payload else {}
                if (body.get("site"), body.get("asset"), body.get("state")) == (
                    *FAULTY,
                    "firing",
                ):
                    return dict(body)
            return None

        wait_for(lambda: firing() is not None, timeout, f"the alert of {'/'.join(FAULTY)}")
        found = firing()
        assert found is not None
        return found


def _env_without_settings() -> dict[str, str]:
    """The environment less any MESHWATCH_* setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MESHWATCH_")}


@contextmanager
def start_stack(broker: Mosquitto, workdir: Path, unique: str) -> Iterator[Stack]:
    """Start pipeline, fleet and console under ``workdir``; stop them all on leaving."""
    prefix = f"{unique}-mw"
    data_dir = workdir / "data"
    data_dir.mkdir()
    config = workdir / "pipeline.yaml"
    config.write_text(PIPELINE_CONFIG)
    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        # module-scoped: set up before the per-test `clean_environ`, so clean it here
        for name in list(os.environ):
            if name.startswith("MESHWATCH_"):
                patch.delenv(name)
        watcher = Watcher(broker, prefix)
        stack.callback(watcher.close)
        env = pipeline_env(broker, data_dir, unique, MESHWATCH_MQTT__PREFIX=prefix)
        pipeline = PipelineProcess(env, workdir / "pipeline.log", config)
        pipeline.start()
        # the autouse `no_stray_pipelines` kills after each test what is listed: this one
        # serves the whole module and is stopped below
        PipelineProcess.started.remove(pipeline)
        stack.callback(_stop_pipeline, pipeline)
        fleet = Fleet(broker, unique)
        stack.callback(fleet.close)
        fleet.warm_up(WARM_UP)
        for site in SITES:
            for asset, _ in ASSETS:
                wait_for(
                    lambda s=site, a=asset: watcher.status(s, a) == "ok",  # type: ignore[misc]
                    30,
                    f"{site}/{asset} ok in the health map; pipeline log:\n{pipeline.log()}",
                )
        fleet.start()
        users = workdir / "users.yaml"
        console_env = {
            **_env_without_settings(),
            "MESHWATCH_DATA_DIR": str(data_dir),
            "MESHWATCH_MQTT__HOST": broker.host,
            "MESHWATCH_MQTT__PORT": str(broker.port),
            "MESHWATCH_MQTT__PREFIX": prefix,
            "MESHWATCH_MQTT__CLIENT_ID": f"meshwatch-web-{unique}",
            "MESHWATCH_WEB__HOST": "127.0.0.1",
            "MESHWATCH_WEB__PORT": str(free_port()),
            "MESHWATCH_WEB__USERS_FILE": str(users),
        }
        for user in (MAINTAINER, VIEWER):
            add_user(console_env, users, user)
        console = Console(console_env, workdir / "console.log")
        stack.callback(console.stop)
        console.start()
        yield Stack(broker, unique, prefix, data_dir, pipeline, console, fleet, watcher)


def _stop_pipeline(pipeline: PipelineProcess) -> None:
    """SIGTERM the pipeline; SIGKILL it if it does not stop in time."""
    if not pipeline.alive():
        return
    try:
        pipeline.stop()
    except subprocess.TimeoutExpired:
        pipeline.kill()
