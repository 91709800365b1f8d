"""The console against a real broker: the retained health map and live ``/events``."""

from __future__ import annotations

import httpx
import orjson
import pytest
from support import publish_retained, wait_for
from webkit import health

from meshwatch.localservers import Mosquitto
from meshwatch.settings import load_settings
from meshwatch.web.serve import WebServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(mosquitto: Mosquitto, unique_topic: str, tmp_path):
    settings = load_settings(
        data_dir=tmp_path,
        mqtt={"host": mosquitto.host, "port": mosquitto.port, "prefix": unique_topic},
    )
    web = WebServer(settings, read_only=True, host="127.0.0.1", port=0)
    web.start()
    try:
        yield web
    finally:
        web.stop()


def test_retained_health_shows_and_a_change_arrives_on_events(
    mosquitto: Mosquitto, unique_topic: str, server: WebServer
) -> None:
    """A retained health message is on the fleet page; its update comes as a ``health`` event."""
    topic = f"{unique_topic}/health/plant-a/cnc-1"
    publish_retained(mosquitto, [(topic, orjson.dumps(health("plant-a", "cnc-1", "ok")))])
    wait_for(lambda: ("plant-a", "cnc-1") in server.fleet.assets, 10, "the retained health")
    page = httpx.get(server.address + "/").text
    assert 'data-asset="plant-a/cnc-1" data-status="ok"' in page
    with httpx.stream("GET", server.address + "/events", timeout=10) as events:
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("data:")) == (
            'data: {"connected":true}'
        )
        changed = health("plant-a", "cnc-1", "critical", "a1")
        publish_retained(mosquitto, [(topic, orjson.dumps(changed))])
        assert next(lines) == ""
        assert next(lines) == "event: health"
        data = orjson.loads(next(lines).removeprefix("data: "))
    assert (data["asset"], data["status"], data["reason"]) == ("cnc-1", "critical", "too hot")
