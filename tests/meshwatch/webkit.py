"""A console for tests of its pages and forms: a fake pipeline, cheap hashes, TestClient.

The fleet is filled directly (no broker); commands go to `FakePipeline`, which answers as
`alerts.commands` does. The broker-backed parts are tested in ``test_web_live.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from starlette.testclient import TestClient

from meshwatch.remote import RemoteError
from meshwatch.web.actions import Actions
from meshwatch.web.app import Console, create_app
from meshwatch.web.auth import User, Users
from meshwatch.web.fleet import Fleet
from meshwatch.web.history import EmbeddedHistory

# argon2 at its cheapest: the tests check the flow, not the cost.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse"


class FakePipeline:
    """Answers commands like the pipeline: known alert ids, a silence list; keeps each body."""

    def __init__(self, alerts: set[str]) -> None:
        self.alerts = alerts
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.silences: list[dict[str, Any]] = []
        self.down = False

    def __call__(self, settings: Any, command: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise RemoteError("cannot connect to the MQTT broker at localhost:1: refused")
        if command in ("ack", "feedback") and body["id"] not in self.alerts:
            raise RemoteError(f"no alert {body['id']!r}: it is not firing nor recently resolved")
        if command == "silence" and body["action"] == "list":
            return {"ok": True, "silences": self.silences}
        self.sent.append((command, body))
        if command == "silence" and body["action"] == "add":
            return {"ok": True, "silence": {"id": "s1", "status": "active"}}
        if command == "silence" and body["action"] == "expire":
            if body["id"] not in {s["id"] for s in self.silences}:
                raise RemoteError(f"no silence {body['id']!r}")
            return {"ok": True, "silence": {"id": body["id"], "status": "expired"}}
        return {"ok": True, "alert": {"id": body.get("id")}}


def users() -> Users:
    """The users: a maintainer (ana) and a viewer (vic), both with `PASSWORD`."""
    hashed = CHEAP.hash(PASSWORD)
    known = {u.name: u for u in (User("ana", hashed, "maintainer"), User("vic", hashed, "viewer"))}
    return Users(known, CHEAP)


def health(site: str, asset: str, status: str, alert_id: str = "", **extra: Any) -> dict[str, Any]:
    """A health message as the pipeline publishes it."""
    alerts = [{"id": alert_id, "rule": "anomaly", "severity": "critical", "state": "firing"}]
    return {
        "site": site,
        "asset": asset,
        "kind": "cnc-mill",
        "status": status,
        "score": 0.9,
        "since": "2026-01-01T00:00:00.000Z",
        "reason": extra.pop("reason", "too hot"),
        "alerts": alerts if alert_id else [],
        **extra,
    }


def console(tmp_path: Path, pipeline: FakePipeline, *, read_only: bool = False) -> Console:
    """A console over an empty store, its fleet with one critical asset."""
    fleet = Fleet()
    fleet.broker(True)
    fleet.health(health("plant-a", "cnc-1", "critical", "a1"))
    actions = Actions(None, pipeline)  # type: ignore[arg-type]
    history = EmbeddedHistory(tmp_path / "meshwatch.db")
    return Console(fleet, actions, history, None if read_only else users())


def client(c: Console) -> TestClient:
    """A test client of the console's app."""
    return TestClient(create_app(c, "test-secret"), base_url="http://testserver")


def token(page: str) -> str:
    """The CSRF token in a page's first form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no csrf field in the page"
    return found.group(1)


def login(http: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Log in through the form; the response after redirects."""
    page = http.get("/login").text
    form = {"csrf": token(page), "username": name, "password": password}
    return http.post("/login", data=form)
