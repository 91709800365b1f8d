"""``meshwatch status``, ``silence`` and ``ack``: what the user sees, through a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson
import pytest
from remotekit import Responder, env_for
from support import publish_retained

from meshwatch.localservers import Mosquitto, free_port

_SILENCE = {
    "id": "3f2a9c",
    "matchers": ["site=plant-a", "asset=~cnc-.*"],
    "starts_at": "2026-11-25T12:00:00.000Z",
    "ends_at": "2026-11-25T14:00:00.000Z",
    "created_by": "alice",
    "comment": "bearing swap",
    "status": "active",
}


def _meshwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the meshwatch command line with `args` and these settings, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _cells(row: str) -> list[str]:
    """The cells of one row of a printed table."""
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


def _health(site: str, asset: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "site": site,
        "asset": asset,
        "kind": "cnc-mill",
        "status": status,
        "score": 0.1234,
        "since": "2026-11-25T12:00:00.000Z",
        "reason": "",
        **extra,
    }


def _leave_health(broker: Mosquitto, prefix: str, *docs: dict[str, Any]) -> None:
    publish_retained(
        broker, [(f"{prefix}/health/{d['site']}/{d['asset']}", orjson.dumps(d)) for d in docs]
    )


def _silence_commands(command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's side of the silence contract, as little of it as these tests need."""
    if body["action"] == "list":
        return {"ok": True, "silences": [_SILENCE]}
    if body["action"] == "expire":
        return {"ok": True, "silence": {**_SILENCE, "id": body["id"], "status": "expired"}}
    return {"ok": True, "silence": {**_SILENCE, "matchers": body["matchers"]}}


@pytest.mark.integration
def test_status_prints_one_row_per_asset_sorted_with_a_footer(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Rows sorted by site and asset, statuses, scores, open alerts, and counts per status."""
    _leave_health(
        mosquitto,
        unique_topic,
        _health("plant-b", "press-1", "ok"),
        _health(
            "plant-a",
            "cnc-2",
            "critical",
            score=0.987,
            alerts=[{"id": "x1", "rule": "spindle-hot", "severity": "critical", "state": "firing"}],
        ),
        _health("plant-a", "cnc-1", "offline", score=None),
    )
    result = _meshwatch(env_for(mosquitto, unique_topic), "status")
    assert result.returncode == 0, result.stderr
    rows = [_cells(line) for line in result.stdout.splitlines() if "plant-" in line]
    assert [row[:5] for row in rows] == [
        ["plant-a", "cnc-1", "cnc-mill", "offline", "-"],
        ["plant-a", "cnc-2", "cnc-mill", "critical", "0.99"],
        ["plant-b", "press-1", "cnc-mill", "ok", "0.12"],
    ]
    assert rows[0][5].startswith("2026-11-25 12:00:00Z (")
    assert [row[6] for row in rows] == ["-", "spindle-hot", "-"]
    assert result.stdout.splitlines()[-1] == "3 assets: ok 1, critical 1, offline 1"


@pytest.mark.integration
def test_status_json_prints_each_health_message_on_a_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """--json: one health message per line, as published, sorted by site and asset."""
    docs = [_health("plant-b", "press-1", "ok"), _health("plant-a", "cnc-1", "warning")]
    _leave_health(mosquitto, unique_topic, *docs)
    result = _meshwatch(env_for(mosquitto, unique_topic), "status", "--json")
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == docs[::-1]


@pytest.mark.integration
def test_status_of_an_empty_fleet_says_so_in_one_line_and_exits_1(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """No health messages: exit 1 and one line asking whether a pipeline runs."""
    result = _meshwatch(env_for(mosquitto, unique_topic), "status", "--wait", "2")
    assert result.returncode == 1
    assert result.stderr == (
        f"meshwatch: no health messages on {unique_topic}/health/# (is a pipeline running?)\n"
    )


def test_status_without_a_broker_fails_in_one_line() -> None:
    """Nothing listens on the broker's port: exit 1 and one line naming host and port."""
    port = free_port()
    env = {"MESHWATCH_MQTT__HOST": "127.0.0.1", "MESHWATCH_MQTT__PORT": str(port)}
    result = _meshwatch(env, "status")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"meshwatch: cannot connect to the MQTT broker at 127.0.0.1:{port}: "
    )
    assert result.stderr.count("\n") == 1


@pytest.mark.integration
def test_silence_add_sends_the_command_and_prints_one_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """The command carries matchers, duration, author and comment; one line tells the result."""
    with Responder(mosquitto, unique_topic, _silence_commands) as responder:
        result = _meshwatch(
            env_for(mosquitto, unique_topic),
            "silence",
            "add",
            "site=plant-a",
            "asset=~cnc-.*",
            "--duration",
            "2h",
            "--by",
            "alice",
            "--comment",
            "bearing swap",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "silence 3f2a9c active until 2026-11-25 14:00:00Z\n"
    [(command, body)] = responder.received
    del body["request_id"]
    assert (command, body) == (
        "silence",
        {
            "action": "add",
            "matchers": ["site=plant-a", "asset=~cnc-.*"],
            "created_by": "alice",
            "comment": "bearing swap",
            "duration": "2h",
        },
    )


@pytest.mark.integration
def test_silence_list_prints_a_table_of_silences(mosquitto: Mosquitto, unique_topic: str) -> None:
    """The reply's silences as a table: id, matchers, repeat, times, author, comment, status."""
    with Responder(mosquitto, unique_topic, _silence_commands):
        result = _meshwatch(env_for(mosquitto, unique_topic), "silence", "list")
    assert result.returncode == 0, result.stderr
    [row] = [_cells(line) for line in result.stdout.splitlines() if "3f2a9c" in line]
    assert row == [
        "3f2a9c",
        "site=plant-a asset=~cnc-.*",
        "-",
        "2026-11-25 12:00:00Z",
        "2026-11-25 14:00:00Z",
        "alice",
        "bearing swap",
        "active",
    ]


@pytest.mark.integration
def test_silence_expire_prints_one_line(mosquitto: Mosquitto, unique_topic: str) -> None:
    """Expiring a silence prints its id and its new status."""
    with Responder(mosquitto, unique_topic, _silence_commands):
        result = _meshwatch(env_for(mosquitto, unique_topic), "silence", "expire", "3f2a9c")
    assert (result.returncode, result.stdout) == (0, "silence 3f2a9c expired\n")


@pytest.mark.integration
def test_ack_prints_one_line_naming_the_alert(mosquitto: Mosquitto, unique_topic: str) -> None:
    """Acknowledging prints the alert, its rule and asset, and who took it."""
    alert = {"id": "a1", "rule": "spindle-hot", "site": "plant-a", "asset": "cnc-2"}

    def acked(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "alert": alert}

    with Responder(mosquitto, unique_topic, acked) as responder:
        result = _meshwatch(
            env_for(mosquitto, unique_topic), "ack", "a1", "--by", "bob", "--comment", "on it"
        )
    assert (result.returncode, result.stdout) == (
        0,
        "alert a1 (spindle-hot on plant-a/cnc-2) acknowledged by bob\n",
    )
    assert responder.received[0][1]["comment"] == "on it"


@pytest.mark.integration
def test_command_without_a_running_pipeline_fails_in_one_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """No pipeline answers: exit 1 and the one-line timeout message."""
    result = _meshwatch(
        env_for(mosquitto, unique_topic), "silence", "expire", "3f2a9c", "--timeout", "1"
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"meshwatch: no reply from a running pipeline on {unique_topic}/cmd/result within 1 s "
        "(the command stays queued for the pipeline's next connection)\n"
    )


@pytest.mark.integration
def test_command_the_pipeline_refuses_fails_with_its_error_in_one_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """Ok false: exit 1 and the pipeline's error as the one line."""

    def refuse(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "no alert 'a9'"}

    with Responder(mosquitto, unique_topic, refuse):
        result = _meshwatch(env_for(mosquitto, unique_topic), "ack", "a9")
    assert (result.returncode, result.stderr) == (1, "meshwatch: no alert 'a9'\n")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["line=3", "--duration", "2h"], "unknown label 'line'"),
        (["asset=~cnc-(", "--duration", "2h"], "bad regular expression"),
        (["site=plant-a"], "give either --duration"),
        (["site=plant-a", "--ends-at", "tomorrow"], "is not an RFC 3339 time"),
    ],
    ids=["unknown-label", "bad-regex", "no-end", "bad-time"],
)
def test_silence_add_with_bad_input_exits_2_in_one_line(args: list[str], says: str) -> None:
    """Malformed matchers or times are refused before anything is sent: exit 2, one line."""
    result = _meshwatch({}, "silence", "add", *args, "--comment", "x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert says in result.stderr
