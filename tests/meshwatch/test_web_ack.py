"""An ack from the console reaches a running ``meshwatch run`` and stops its repeats.

Real mosquitto, the pipeline as a subprocess and the console served by uvicorn, driven over
HTTP as a browser would: log in as a maintainer, post the ack form with its CSRF token. The
pipeline's own notifications (the mqtt receiver's ``<prefix>/alerts/...``) say the rest: no
repeat after the ack; the resolved episode the pipeline saved names the logged-in user as the
one who acked, with the comment.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from support import BASE_TS, PipelineProcess, pipeline_env, publish, subscribe, wait_for
from webkit import PASSWORD, token

from meshwatch.localservers import Mosquitto
from meshwatch.settings import load_settings
from meshwatch.web.auth import add_user
from meshwatch.web.serve import WebServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One limit rule, repeats every 10 s of event time (one reading a second), no models.
CONFIG = """
alerts:
  rules:
    - {name: hot, type: limit, severity: critical, condition: "temp > 80", resolve_after: 2}
  route: {receivers: [mqtt], group_interval: 1s, repeat_interval: 10s}
models: {enabled: false}
"""
SITE, ASSET = "s1", "oven-1"


def _ovens(unique: str, start: int, stop: int, *, hot: bool) -> list[tuple[str, bytes]]:
    """One oven, one reading a second of event time: hot (90) or normal (60)."""
    topic = f"{unique}/{SITE}/{ASSET}/telemetry"
    return [
        (
            topic,
            orjson.dumps(
                {
                    "ts": BASE_TS + n * 1000,
                    "kind": "oven",
                    "metrics": {"temp": 90.0 if hot else 60.0},
                }
            ),
        )
        for n in range(start, stop)
    ]


@pytest.fixture
def prefix(unique_topic: str) -> str:
    """The pipeline's own prefix, apart from the telemetry's."""
    return f"{unique_topic}-mw"


@pytest.fixture
def pipeline(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, prefix: str, tmp_path: Path
) -> Iterator[PipelineProcess]:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(CONFIG)
    env = pipeline_env(mosquitto, data_dir, unique_topic, MESHWATCH_MQTT__PREFIX=prefix)
    process = PipelineProcess(env, tmp_path / "meshwatch.log", config)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def web(mosquitto: Mosquitto, prefix: str, tmp_path: Path) -> Iterator[WebServer]:
    users = tmp_path / "users.yaml"
    add_user(users, "ana", PASSWORD, "maintainer")
    settings = load_settings(
        data_dir=tmp_path / "web",
        mqtt={"host": mosquitto.host, "port": mosquitto.port, "prefix": prefix},
        web={"users_file": users},
    )
    server = WebServer(settings, read_only=False, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _resolved(data_dir: Path, alert_id: str) -> dict[str, Any]:
    """The resolved episode as the pipeline saved it in alerts.db (feedback reads it)."""
    with closing(sqlite3.connect(data_dir / "alerts.db")) as conn:
        [(data,)] = conn.execute("SELECT data FROM resolved WHERE alert_id = ?", (alert_id,))
    episode: dict[str, Any] = orjson.loads(data)
    return episode


def _alerts(heard: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(m.payload) for m in heard if m.payload]


def test_an_ack_from_the_console_is_recorded_by_the_pipeline_and_stops_the_repeats(
    mosquitto: Mosquitto,
    data_dir: Path,
    unique_topic: str,
    prefix: str,
    pipeline: PipelineProcess,
    web: WebServer,
) -> None:
    """Firing and two repeats; ana acks from the console; then no repeat until it resolves."""
    listener, heard = subscribe(mosquitto, f"{prefix}/alerts/#")
    publish(mosquitto, _ovens(unique_topic, 0, 25, hot=True))
    wait_for(lambda: len(_alerts(heard)) >= 3, 20, "the firing and two repeats")
    alert_id = _alerts(heard)[0]["id"]
    with httpx.Client(base_url=web.address, follow_redirects=True, timeout=10) as http:
        form = {"csrf": token(http.get("/login").text), "username": "ana", "password": PASSWORD}
        assert http.post("/login", data=form).status_code == 200

        def listed() -> bool:  # the console heard the health map with the open alert
            return f'data-alert-id="{alert_id}"' in http.get("/alerts").text

        wait_for(listed, 10, "the alert on the console's alerts page")
        page = http.get("/alerts").text
        ack = {"csrf": token(page), "comment": "on my way"}
        done = http.post(f"/alerts/{alert_id}/ack", data=ack)
    assert done.status_code == 200
    flash = re.search(r'class="flash ok"[^>]*>([^<]*)<', done.text)
    assert flash is not None and f"alert {alert_id} acknowledged by ana" in flash.group(1)

    before = len(_alerts(heard))
    publish(mosquitto, _ovens(unique_topic, 25, 100, hot=True))  # 75 s: 7 repeats unacked
    publish(mosquitto, _ovens(unique_topic, 100, 105, hot=False))
    wait_for(lambda: _alerts(heard)[-1]["state"] == "resolved", 20, "the resolution")
    listener.disconnect()
    after = _alerts(heard)[before:]
    assert [a["state"] for a in after] == ["resolved"]
    assert after[0]["id"] == alert_id
    acked = _resolved(data_dir, alert_id)["alert"]
    assert (acked["acked_by"], acked["extra"]["ack"]["comment"]) == ("ana", "on my way")
