"""Alerts in the live pipeline: real mosquitto, a real webhook endpoint and a real SMTP server.

Each test runs `meshwatch run` as a child process and publishes telemetry whose timestamps
advance one second per reading: every duration (for, repeat, deadman) is event time, so the
tests never sleep to make time pass.
"""

from __future__ import annotations

import email
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import BASE_TS, PipelineProcess, Watcher, pipeline_env, publish, wait_for

from alerts.receivers import sign
from common.timestamps import parse_rfc3339
from ingest.embedded import EmbeddedStore
from meshwatch.localservers import Mosquitto

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"
SITES = ("north", "south", "east")


@pytest.fixture
def prefix(unique_topic: str) -> str:
    """The pipeline's outgoing prefix for this test (telemetry uses ``<unique>/...``)."""
    return f"{unique_topic}-mw"


@pytest.fixture
def watcher(mosquitto: Mosquitto, prefix: str) -> Iterator[Watcher]:
    w = Watcher(mosquitto, prefix)
    yield w
    w.close()


def _pipeline(
    broker: Mosquitto, data_dir: Path, unique: str, prefix: str, tmp_path: Path, config: str
) -> PipelineProcess:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(config)
    env = pipeline_env(broker, data_dir, unique, MESHWATCH_MQTT__PREFIX=prefix)
    process = PipelineProcess(env, tmp_path / "meshwatch.log", path)
    process.start()
    return process


def _models(warmup: int = 150) -> str:
    # These tests are about the alerts' plumbing, with faults of tens of seconds: the control
    # chart flags a fault at once, where the default model gives a lone step 40 readings.
    return f"""
models:
  profiles:
    - name: default
      warmup: {warmup}
      detectors: [{{type: control_chart}}]
"""


def _cnc(rng: random.Random, n: int, fault: bool) -> dict[str, Any]:
    """A CNC reading at second `n`; a fault shakes the spindle (vibration x5)."""
    load = rng.gauss(0, 1)
    return {
        "ts": BASE_TS + n * 1000,
        "kind": "cnc-mill",
        "metrics": {
            "current_a": 10 + 2 * load + rng.gauss(0, 0.2),
            "spindle_temp_c": 60 + 3 * load + rng.gauss(0, 0.3),
            "vibration_rms": (2.0 if fault else 0.4) + rng.gauss(0, 0.02),
        },
    }


def _fleet(
    unique: str, start: int, count: int, *, faulty: range = range(0), sites=SITES, seed: int = 7
) -> list[tuple[str, bytes]]:
    """`count` seconds of one CNC per site; the first site's CNC is faulty during `faulty`."""
    rng = random.Random(seed + start)
    return [
        (f"{unique}/{site}/cnc-1/telemetry", orjson.dumps(_cnc(rng, n, i == 0 and n in faulty)))
        for n in range(start, start + count)
        for i, site in enumerate(sites)
    ]


def _stored_alerts(data_dir: Path) -> list[dict[str, Any]]:
    store = EmbeddedStore(data_dir / "meshwatch.db")
    try:
        return list(store.rows("alert"))
    finally:
        store.close()


FAULT_CONFIG = (
    _models()
    + """
alerts:
  rules:
    - {name: spindle_anomaly, type: anomaly, severity: critical, for_readings: 3,
       resolve_after: 5}
  route:
    receivers: [mqtt, log, hook, mail]
    group_interval: 1s
    repeat_interval: 15s
  receivers:
    - name: hook
      webhook: {url: "HOOK_URL", secret: "SECRET"}
    - name: mail
      email: {host: 127.0.0.1, port: SMTP_PORT, username: SMTP_USER, password: "SMTP_PASSWORD",
              sender: meshwatch@example.com, to: [maintenance@example.com], ca_file: CA_FILE}
  retry_min: 0.05
  retry_max: 0.5
"""
)


def _fault_config(http_server: Any, smtp_server: Any, ca_file: Path) -> str:
    return (
        FAULT_CONFIG.replace("HOOK_URL", http_server.url)
        .replace("SECRET", SECRET)
        .replace("SMTP_PORT", str(smtp_server.port))
        .replace("SMTP_USER", smtp_server.username)
        .replace("SMTP_PASSWORD", smtp_server.password)
        .replace("CA_FILE", str(ca_file))
    )


def test_a_planted_fault_notifies_each_receiver_once_repeats_and_resolves(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher, http_server, smtp_server, ca_file
) -> None:
    """One failing CNC: one firing per receiver, repeats, one resolved; healthy ones stay quiet."""
    config = _fault_config(http_server, smtp_server, ca_file)
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, config)
    # warm-up and normal running, then 40 s of fault, then recovery
    publish(mosquitto, _fleet(unique_topic, 0, 320, faulty=range(200, 240)))
    wait_for(
        lambda: any(a["state"] == "resolved" for a in watcher.alerts()), 30, "a resolved alert"
    )
    alerts = watcher.alerts()
    assert {(a["site"], a["asset"]) for a in alerts} == {("north", "cnc-1")}
    states = [a["state"] for a in alerts]
    assert states[0] == "firing"
    assert states[-1] == "resolved"
    assert states.count("resolved") == 1
    assert len({a["id"] for a in alerts}) == 1
    # repeats every 15 s of event time while it fires, counted from the first notification
    fired, resolved = (parse_rfc3339(alerts[-1][k]) for k in ("started_at", "resolved_at"))
    expected = len([k for k in range(1, 1000) if fired + k * 15 * 10**9 < resolved])
    assert expected >= 1  # the fault lasted 40 s
    assert states.count("firing") == 1 + expected
    # every receiver told the same, once each: webhook (signed), email (over TLS), log
    wait_for(lambda: len(smtp_server.mails) >= len(states), 30, "the mails")
    wait_for(lambda: len(http_server.requests) >= len(states), 30, "the webhooks")
    hooks = [r.json() for r in http_server.requests]
    assert [(h["id"], h["state"]) for h in hooks] == [(a["id"], a["state"]) for a in alerts]
    for request in http_server.requests:
        assert request.headers["x-meshwatch-signature"] == sign(SECRET.encode(), request.body)
    mails = [email.message_from_bytes(m.content) for m in smtp_server.mails]
    assert len(mails) == len(states)
    assert [m["Subject"].startswith("[FIRING") for m in mails] == [s == "firing" for s in states]
    assert mails[-1]["Subject"].startswith("[RESOLVED")
    assert all(m.tls for m in smtp_server.mails)
    assert all(alerts[0]["id"] in m.get_payload() for m in mails)
    logged = [line for line in pipeline.log().splitlines() if alerts[0]["id"] in line]
    assert len([line for line in logged if "meshwatch.alerts" in line]) == len(states)
    stored = _stored_alerts(data_dir)
    assert [r["fields"]["state"] for r in stored] == ["firing", "resolved"]
    assert {r["fields"]["id"] for r in stored} == {alerts[0]["id"]}
    assert pipeline.stop()[0] == 0


def test_flapping_around_the_threshold_does_not_flood(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """A limit crossed every other reading: one alert at most, never a notification a reading."""
    config = """
alerts:
  rules:
    - {name: hot, type: limit, severity: warning, condition: "temp > 80", resolve_after: 5}
  route: {group_interval: 1s}
models: {enabled: false}
"""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, config)
    messages = [
        (
            f"{unique_topic}/north/oven-1/telemetry",
            orjson.dumps({"ts": BASE_TS + n * 1000, "metrics": {"temp": 81.0 if n % 2 else 79.0}}),
        )
        for n in range(200)
    ]
    publish(mosquitto, messages)
    wait_for(lambda: _metric(pipeline, "meshwatch_readings_accepted_total") == 200, 10, "all in")
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing alert")
    assert pipeline.stop()[0] == 0  # a clean stop delivers what the outbox still holds
    assert [a["state"] for a in watcher.alerts()] == ["firing"]


def _metric(pipeline: PipelineProcess, name: str, labels: str = "") -> float:
    """One sample of the pipeline's /metrics (0 when absent)."""
    for line in pipeline.metrics().splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.split()[-1])
    return 0.0


def test_deadman_marks_a_silent_asset_offline_and_resolves_when_it_returns(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """An asset that stops publishing (in event time) goes offline and fires; data resolves it."""
    config = """
alerts:
  rules:
    - {name: offline, type: deadman, severity: critical, for: 20s, site: false}
  route: {group_interval: 1s}
models: {enabled: false}
"""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, config)

    def second(n: int, assets: tuple[str, ...]) -> list[tuple[str, bytes]]:
        body = {"ts": BASE_TS + n * 1000, "kind": "press", "metrics": {"p": 1.0}}
        return [(f"{unique_topic}/north/{a}/telemetry", orjson.dumps(body)) for a in assets]

    both, one = ("press-1", "press-2"), ("press-1",)
    publish(mosquitto, [m for n in range(10) for m in second(n, both)])
    publish(mosquitto, [m for n in range(10, 40) for m in second(n, one)])
    wait_for(lambda: len(watcher.alerts()) >= 1, 15, "the offline alert")
    fired = watcher.alerts()[0]
    assert (fired["asset"], fired["rule"], fired["state"]) == ("press-2", "offline", "firing")
    # its last reading was at 9 s: offline from 29 s of event time, not from when we noticed
    assert fired["started_at"] == "2026-01-01T00:00:29.000Z"
    wait_for(
        lambda: watcher.status("north", "press-2") == "offline",
        10,
        "offline health",
    )
    publish(mosquitto, [m for n in range(40, 45) for m in second(n, both)])
    wait_for(lambda: len(watcher.alerts()) >= 2, 15, "the resolution")
    assert watcher.alerts()[1]["state"] == "resolved"
    wait_for(lambda: watcher.status("north", "press-2") == "ok", 10, "ok again")
    pipeline.stop()


def test_webhook_down_then_up_with_a_restart_between_loses_nothing(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, http_server
) -> None:
    """Notifications queued while the endpoint refuses survive a restart and arrive in order."""
    config = f"""
alerts:
  rules:
    - {{name: hot, type: limit, severity: warning, condition: "temp > 80"}}
  route: {{receivers: [hook], group_interval: 1s}}
  receivers:
    - {{name: hook, webhook: {{url: "{http_server.url}", secret: "{SECRET}"}}}}
  retry_min: 0.05
  retry_max: 0.2
models: {{enabled: false}}
"""
    http_server.down(503)

    def episode(asset: str, n0: int) -> list[tuple[str, bytes]]:
        temps = [85.0] * 3 + [70.0] * 3
        return [
            (
                f"{unique_topic}/north/{asset}/telemetry",
                orjson.dumps({"ts": BASE_TS + (n0 + i) * 1000, "metrics": {"temp": t}}),
            )
            for i, t in enumerate(temps)
        ]

    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, config)
    publish(mosquitto, episode("oven-1", 0) + episode("oven-2", 10))
    wait_for(lambda: len(http_server.requests) >= 5, 15, "failing attempts")
    assert pipeline.stop()[0] == 0
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    publish(mosquitto, episode("oven-3", 20))
    wait_for(lambda: len(http_server.requests) >= 8, 15, "more failing attempts")
    http_server.up()
    wait_for(lambda: len(http_server.accepted) >= 6, 30, "all six notifications delivered")
    delivered = [r.json() for r in http_server.accepted]
    assert [(d["asset"], d["state"]) for d in delivered] == [
        ("oven-1", "firing"),
        ("oven-1", "resolved"),
        ("oven-2", "firing"),
        ("oven-2", "resolved"),
        ("oven-3", "firing"),
        ("oven-3", "resolved"),
    ]
    for r in http_server.accepted:
        assert r.headers["x-meshwatch-signature"] == sign(SECRET.encode(), r.body)
    pipeline.stop()


LIMIT_CONFIG = """
alerts:
  rules:
    - {name: hot, type: limit, severity: critical, condition: "temp > 80", resolve_after: 2}
    - {name: offline, type: deadman, severity: critical, for: 30s}
  route: {group_interval: 1s, repeat_interval: 10s}
models: {enabled: false}
"""


def _ovens(
    unique: str, start: int, stop: int, *, hot: range = range(0), sites=SITES
) -> list[tuple[str, bytes]]:
    """One oven per site, one reading a second; the first site's oven is hot during `hot`."""
    return [
        (
            f"{unique}/{site}/oven-1/telemetry",
            orjson.dumps(
                {
                    "ts": BASE_TS + n * 1000,
                    "kind": "oven",
                    "metrics": {"temp": 90.0 if (i == 0 and n in hot) else 60.0},
                }
            ),
        )
        for n in range(start, stop)
        for i, site in enumerate(sites)
    ]


def test_reroute_advice_lists_healthy_peers_and_clears_on_recovery(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Advice for a failing CNC lists the healthy CNCs elsewhere, not failing or offline ones."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)

    def second(n: int, temps: dict[tuple[str, str], float]) -> list[tuple[str, bytes]]:
        return [
            (
                f"{unique_topic}/{site}/{asset}/telemetry",
                orjson.dumps({"ts": BASE_TS + n * 1000, "kind": "cnc", "metrics": {"temp": t}}),
            )
            for (site, asset), t in temps.items()
        ]

    fleet = {
        ("north", "cnc-1"): 60.0,  # fails
        ("south", "cnc-1"): 60.0,
        ("south", "cnc-2"): 60.0,  # goes offline
        ("east", "cnc-1"): 60.0,
        ("east", "cnc-2"): 60.0,  # fails too
    }
    publish(mosquitto, [m for n in range(10) for m in second(n, fleet)])
    failing = {**fleet, ("north", "cnc-1"): 95.0, ("east", "cnc-2"): 95.0}
    del failing[("south", "cnc-2")]
    publish(mosquitto, [m for n in range(10, 50) for m in second(n, failing)])
    mine = f"{prefix}/reroute/north/cnc-1"

    def advice() -> dict[str, Any] | None:
        found = [m for m in watcher.on("reroute") if m.topic == mine]
        return found[-1].json() if found and found[-1].payload else None

    wait_for(
        lambda: watcher.status("south", "cnc-2") == "offline",
        10,
        "south/cnc-2 offline",
    )
    wait_for(lambda: advice() is not None and len(advice()["candidates"]) == 2, 10, "advice")
    body = advice()
    assert (body["site"], body["asset"], body["kind"], body["status"]) == (
        "north",
        "cnc-1",
        "cnc",
        "critical",
    )
    assert {(c["site"], c["asset"]) for c in body["candidates"]} == {
        ("south", "cnc-1"),
        ("east", "cnc-1"),
    }
    healthy = {**failing, ("north", "cnc-1"): 60.0}
    publish(mosquitto, [m for n in range(50, 60) for m in second(n, healthy)])
    wait_for(lambda: watcher.on("reroute") and _cleared(watcher, mine), 10, "the advice cleared")
    pipeline.stop()


def _cleared(watcher: Watcher, topic: str) -> bool:
    found = [m for m in watcher.on("reroute") if m.topic == topic]
    return bool(found) and found[-1].payload == b""


def test_a_silence_holds_notifications_back_and_marks_maintenance_until_it_expires(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Silenced: no notification, health maintenance; expired: the still-hot oven notifies."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 5))
    reply = watcher.command(
        "silence",
        {
            "action": "add",
            "matchers": ["site=north", "asset=oven-1"],
            "duration": "3s",
            "created_by": "ana",
            "comment": "door seal replacement",
        },
    )
    assert reply["ok"], reply
    wait_for(
        lambda: watcher.status("north", "oven-1") == "maintenance",
        10,
        "maintenance health",
    )
    publish(mosquitto, _ovens(unique_topic, 5, 15, hot=range(5, 100)))
    wait_for(lambda: pipeline.metrics().count('muted_total{cause="silenced"}') > 0, 10, "muted")
    assert watcher.alerts() == []
    # the silence ends (3 s of wall time): the next flush tells of the oven that is still hot
    publish_until = _ovens(unique_topic, 15, 60, hot=range(5, 100))
    wait_for(lambda: "maintenance" not in str(watcher.health("north", "oven-1")), 10, "expiry")
    publish(mosquitto, publish_until)
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing notification")
    assert watcher.alerts()[0]["state"] == "firing"
    assert watcher.alerts()[0]["started_at"] == "2026-01-01T00:00:05.000Z"
    pipeline.stop()


def test_an_acknowledged_alert_is_not_repeated(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Repeats every 10 s of event time until acked, then none until it resolves."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 25, hot=range(0, 100)))
    wait_for(lambda: len(watcher.alerts()) >= 3, 10, "firing and two repeats")
    alert_id = watcher.alerts()[0]["id"]
    reply = watcher.command("ack", {"id": alert_id, "by": "ben", "comment": "on my way"})
    assert reply["ok"], reply
    before = len(watcher.alerts())
    publish(mosquitto, _ovens(unique_topic, 25, 100, hot=range(0, 100)))
    publish(mosquitto, _ovens(unique_topic, 100, 105))
    wait_for(lambda: watcher.alerts()[-1]["state"] == "resolved", 10, "the resolution")
    assert len(watcher.alerts()) == before + 1
    pipeline.stop()


def test_an_offline_site_inhibits_the_alerts_of_its_assets(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """A whole site goes silent: one site-wide notification, not one per asset."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    assets = [f"oven-{i}" for i in range(1, 4)]

    def second(n: int, sites: tuple[str, ...]) -> list[tuple[str, bytes]]:
        body = orjson.dumps({"ts": BASE_TS + n * 1000, "metrics": {"temp": 60.0}})
        return [(f"{unique_topic}/{s}/{a}/telemetry", body) for s in sites for a in assets]

    publish(mosquitto, [m for n in range(10) for m in second(n, ("north", "south"))])
    publish(mosquitto, [m for n in range(10, 60) for m in second(n, ("south",))])
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the site alert")
    wait_for(
        lambda: all(watcher.status("north", a) == "offline" for a in assets),
        10,
        "every north oven offline",
    )
    alerts = watcher.alerts()
    assert {(a["site"], a["asset"], a["rule"]) for a in alerts} == {("north", "*", "offline")}
    assert "north" in alerts[0]["message"]
    pipeline.stop()


def test_a_restart_with_a_firing_alert_neither_repeats_the_firing_nor_forgets_it(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Restarted while firing: no second firing notification, and it still resolves."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 5, hot=range(0, 8)))
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing")
    assert pipeline.stop()[0] == 0
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    publish(mosquitto, _ovens(unique_topic, 5, 12, hot=range(0, 8)))
    wait_for(lambda: watcher.alerts()[-1]["state"] == "resolved", 10, "the resolution")
    states = [a["state"] for a in watcher.alerts()]
    assert states == ["firing", "resolved"]
    assert len({a["id"] for a in watcher.alerts()}) == 1
    pipeline.stop()


def test_a_malformed_command_is_answered_with_the_problem_and_changes_nothing(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """A silence without a comment is refused on cmd/result; the silence list stays empty."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    reply = watcher.command(
        "silence",
        {"action": "add", "matchers": ["site=north"], "duration": "1h", "created_by": "x"},
    )
    assert reply["ok"] is False
    assert "comment" in reply["error"]
    assert watcher.command("silence", {"action": "list"})["silences"] == []
    pipeline.stop()


def test_a_bad_rules_file_fails_start_up_with_one_line(tmp_path) -> None:
    """The file, the line, the key and the problem, on one line; exit code 2."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: hot\n    type: limit\n    condition: temp >> 80\n")
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "run"],
        env={**os.environ, "MESHWATCH_ALERTS__RULES_FILE": str(rules)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(rules) in lines[0]
    assert "line 2" in lines[0]
    assert "temp >> 80" in lines[0]


def _cli(pipeline: PipelineProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a `meshwatch` command against the same broker and prefix as `pipeline`."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_silence_and_ack_commands_work_against_the_running_pipeline(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """The CLI reads the live health map, silences an asset, and acks an alert."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 5, hot=range(0, 100)))
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing")
    wait_for(lambda: len(watcher.on("health")) >= 3, 10, "three health messages")
    status = _cli(pipeline, "status", "--json", "--wait", "2")
    assert status.returncode == 0, status.stderr
    fleet = {(h["site"], h["asset"]): h for h in map(orjson.loads, status.stdout.splitlines())}
    assert fleet[("north", "oven-1")]["status"] == "critical"
    assert fleet[("south", "oven-1")]["status"] == "ok"
    table = _cli(pipeline, "status", "--wait", "2")
    assert "critical" in table.stdout and "oven-1" in table.stdout
    added = _cli(pipeline, "silence", "add", "site=south", "--duration", "1h", "--comment", "pm")
    assert added.returncode == 0, added.stderr
    wait_for(
        lambda: watcher.status("south", "oven-1") == "maintenance",
        10,
        "south in maintenance",
    )
    listed = _cli(pipeline, "silence", "list", "--json")
    assert listed.returncode == 0 and "site=" in listed.stdout
    acked = _cli(pipeline, "ack", watcher.alerts()[0]["id"], "--comment", "on it")
    assert acked.returncode == 0, acked.stderr
    unknown = _cli(pipeline, "ack", "0123456789abcdef")
    assert unknown.returncode == 1
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert "no open alert" in unknown.stderr
    pipeline.stop()


def test_a_repeating_silence_from_the_cli_mutes_inside_its_window_only(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """``--every "thu 00:00-00:01"``: the readings of that minute are muted, the next told."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 3))
    added = _cli(
        pipeline, "silence", "add", "site=north", "--every", "thu 00:00-00:01", "--comment", "pm"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.endswith(", every thu 00:00-00:01, until expired\n")
    wait_for(lambda: watcher.status("north", "oven-1") == "maintenance", 10, "maintenance")
    publish(mosquitto, _ovens(unique_topic, 3, 50, hot=range(3, 1000)))
    wait_for(lambda: _metric(pipeline, "meshwatch_acks_total") >= 150, 10, "the readings")
    assert watcher.alerts() == []  # 2026-01-01 is a Thursday: inside the window
    publish(mosquitto, _ovens(unique_topic, 50, 70, hot=range(3, 1000)))
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the alert told after the window")
    assert watcher.alerts()[0]["state"] == "firing"
    listed = _cli(pipeline, "silence", "list", "--json")
    assert orjson.loads(listed.stdout)["every"] == "thu 00:00-00:01"
    bad = _cli(pipeline, "silence", "add", "site=north", "--every", "funday", "--comment", "pm")
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    assert "'funday' is not a weekday" in bad.stderr
    pipeline.stop()


def test_a_crash_with_a_firing_alert_neither_repeats_the_firing_nor_forgets_it(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """SIGKILL while firing: the state saved before the acks brings it back, told once."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    publish(mosquitto, _ovens(unique_topic, 0, 5, hot=range(0, 8)))
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing")
    wait_for(lambda: _metric(pipeline, "meshwatch_acks_total") >= 15, 10, "the acks")
    pipeline.kill()
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    publish(mosquitto, _ovens(unique_topic, 5, 12, hot=range(0, 8)))
    wait_for(lambda: watcher.alerts()[-1]["state"] == "resolved", 10, "the resolution")
    assert [a["state"] for a in watcher.alerts()] == ["firing", "resolved"]
    assert len({a["id"] for a in watcher.alerts()}) == 1
    pipeline.stop()


def test_a_resolution_under_a_silence_is_sent_after_a_crash(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Told it fired, silenced for the repair, SIGKILL: the resolution still goes out, muted."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    alert_id = _firing_oven(mosquitto, unique_topic, watcher, pipeline)
    added = _cli(pipeline, "silence", "add", "site=north", "--duration", "1h", "--comment", "seal")
    assert added.returncode == 0, added.stderr
    wait_for(lambda: watcher.status("north", "oven-1") == "maintenance", 10, "maintenance")
    pipeline.kill()
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    publish(mosquitto, _ovens(unique_topic, 5, 12))
    wait_for(lambda: watcher.alerts()[-1]["state"] == "resolved", 10, "the resolution")
    assert [(a["id"], a["state"]) for a in watcher.alerts()] == [
        (alert_id, "firing"),
        (alert_id, "resolved"),
    ]
    assert (watcher.alerts()[-1]["muted"], watcher.alerts()[-1]["silenced"]) == ("silenced", True)
    pipeline.stop()


# --- alarm hygiene: shelving and flap damping in the live pipeline ------------------------


def _firing_oven(
    mosquitto: Mosquitto, unique: str, watcher: Watcher, pipeline: PipelineProcess
) -> str:
    """North's oven hot for 5 s (LIMIT_CONFIG repeats every 10 s); return its alert id."""
    publish(mosquitto, _ovens(unique, 0, 5, hot=range(0, 1000)))
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "the firing")
    return str(watcher.alerts()[0]["id"])


def _entry(watcher: Watcher) -> dict[str, Any]:
    """The health map's entry of north's oven alert."""
    health = watcher.health("north", "oven-1")
    assert health is not None
    return dict(health["alerts"][0])


def test_shelve_and_unshelve_from_the_cli_mute_and_announce_again(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Shelved: no repeats, health marked; unshelved: the alert, still firing, is told again."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    alert_id = _firing_oven(mosquitto, unique_topic, watcher, pipeline)
    shelved = _cli(pipeline, "shelve", alert_id, "--for", "1h", "--by", "ana", "--comment", "seal")
    assert shelved.returncode == 0, shelved.stderr
    assert shelved.stdout.startswith(f"alert {alert_id} (hot on north/oven-1) shelved by ana until")
    wait_for(lambda: _entry(watcher).get("shelved_by") == "ana", 10, "health marked shelved")
    told = len(watcher.alerts())
    publish(mosquitto, _ovens(unique_topic, 5, 45, hot=range(0, 1000)))  # 4 repeats' worth
    wait_for(lambda: _metric(pipeline, "meshwatch_acks_total") >= 135, 10, "the readings")
    assert len(watcher.alerts()) == told
    unshelved = _cli(pipeline, "unshelve", alert_id)
    assert (unshelved.returncode, unshelved.stdout) == (
        0,
        f"alert {alert_id} (hot on north/oven-1) unshelved\n",
    )
    publish(mosquitto, _ovens(unique_topic, 45, 48, hot=range(0, 1000)))
    wait_for(lambda: len(watcher.alerts()) > told, 10, "the alert announced again")
    assert watcher.alerts()[-1]["state"] == "firing"
    assert "shelved_by" not in _entry(watcher)
    pipeline.stop()


def test_a_bad_shelve_from_the_cli_is_one_line_and_changes_nothing(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """An unknown alert id, or a shelf longer than a day: one line, non-zero exit, no shelf."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    alert_id = _firing_oven(mosquitto, unique_topic, watcher, pipeline)
    unknown = _cli(pipeline, "shelve", "0123456789abcdef", "--for", "1h")
    assert (unknown.returncode, unknown.stderr.count("\n")) == (1, 1)
    assert "no open alert with id '0123456789abcdef'" in unknown.stderr
    too_long = _cli(pipeline, "shelve", alert_id, "--for", "2d")
    assert (too_long.returncode, too_long.stderr.count("\n")) == (2, 1)
    assert "a shelf lasts at most 1d" in too_long.stderr
    not_shelved = _cli(pipeline, "unshelve", alert_id)
    assert (not_shelved.returncode, not_shelved.stderr) == (
        1,
        f"meshwatch: alert {alert_id} is not shelved\n",
    )
    assert watcher.command("shelve", {"action": "list"})["shelves"] == []
    pipeline.stop()


def test_a_shelf_survives_a_crash(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """SIGKILL with a shelved alert: after the restart it is still shelved, and not repeated."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, LIMIT_CONFIG)
    alert_id = _firing_oven(mosquitto, unique_topic, watcher, pipeline)
    reply = watcher.command(
        "shelve", {"action": "shelve", "id": alert_id, "duration": "1h", "by": "ana"}
    )
    assert reply["ok"], reply
    pipeline.kill()
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    told = len(watcher.alerts())
    publish(mosquitto, _ovens(unique_topic, 5, 45, hot=range(0, 1000)))
    wait_for(lambda: _metric(pipeline, "meshwatch_acks_total") >= 120, 10, "the readings")
    assert len(watcher.alerts()) == told
    [shelf] = watcher.command("shelve", {"action": "list"})["shelves"]
    assert (shelf["alert_id"], shelf["by"]) == (alert_id, "ana")
    pipeline.stop()


FLAPPING_CONFIG = """
alerts:
  rules:
    - {name: hot, type: limit, severity: warning, condition: "temp > 80",
       flapping: {firings: 2, window: 10m, quiet: 30s}}
  route: {group_interval: 1s, repeat_interval: 1h}
models: {enabled: false}
"""


def test_flap_damping_survives_a_crash(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Two firings, SIGKILL, and the third is still flapping: held, told once, then resolved."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, prefix, tmp_path, FLAPPING_CONFIG)
    # The oven is hot for 2 s every 20 s: it fires and resolves, again and again.
    publish(mosquitto, _ovens(unique_topic, 0, 20, sites=("north",)))
    publish(mosquitto, _ovens(unique_topic, 20, 40, hot=range(20, 22), sites=("north",)))
    publish(mosquitto, _ovens(unique_topic, 40, 60, hot=range(40, 42), sites=("north",)))
    wait_for(lambda: len(watcher.alerts()) >= 4, 10, "two firings and two resolutions")
    wait_for(lambda: _metric(pipeline, "meshwatch_acks_total") >= 60, 10, "the acks")
    pipeline.kill()
    pipeline = PipelineProcess(pipeline.env, tmp_path / "meshwatch2.log", pipeline.config)
    pipeline.start()
    publish(mosquitto, _ovens(unique_topic, 60, 80, hot=range(60, 62), sites=("north",)))
    publish(mosquitto, _ovens(unique_topic, 80, 100, hot=range(80, 82), sites=("north",)))
    wait_for(lambda: len(watcher.alerts()) >= 5, 10, "the third firing")
    assert [(a["state"], a["flapping"]) for a in watcher.alerts()] == [
        ("firing", False),
        ("resolved", False),
        ("firing", False),
        ("resolved", False),
        ("firing", True),
    ]
    publish(mosquitto, _ovens(unique_topic, 100, 140, sites=("north",)))
    wait_for(lambda: len(watcher.alerts()) >= 6, 10, "the resolution once quiet")
    assert (watcher.alerts()[-1]["state"], watcher.alerts()[-1]["flapping"]) == ("resolved", True)
    assert len({a["id"] for a in watcher.alerts()[4:]}) == 1
    pipeline.stop()


# --- the fleet seen whole: two instances, each with its own part -----------------------------


def _instances(
    mosquitto: Mosquitto, data_dir: Path, unique: str, prefix: str, tmp_path: Path, n: int = 2
) -> list[PipelineProcess]:
    """`n` pipelines on one broker and prefix, instance k on the topics ``<unique>-k/...``."""
    parts = []
    for k in range(1, n + 1):
        (tmp_path / f"i{k}").mkdir()
        config = tmp_path / f"i{k}" / "meshwatch.yaml"
        config.write_text(LIMIT_CONFIG)
        env = pipeline_env(
            mosquitto, data_dir / f"i{k}", f"{unique}-{k}", MESHWATCH_MQTT__PREFIX=prefix
        )
        parts.append(PipelineProcess(env, tmp_path / f"i{k}" / "meshwatch.log", config))
        parts[-1].start()
    return parts


def _instance_cnc(unique: str, part: int, site: str, n: int, temp: float) -> tuple[str, bytes]:
    """A CNC's reading at second `n`, on instance `part`'s topics."""
    body = {"ts": BASE_TS + n * 1000, "kind": "cnc", "metrics": {"temp": temp}}
    return f"{unique}-{part}/{site}/cnc-1/telemetry", orjson.dumps(body)


def test_advice_names_an_asset_held_by_another_instance(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Two pipelines, each on its own partition of the topics, are one fleet.

    The first's failing CNC is advised to move to the second's healthy one, and ``status``
    sees both parts.
    """
    parts = _instances(mosquitto, data_dir, unique_topic, prefix, tmp_path)
    publish(mosquitto, [_instance_cnc(unique_topic, 2, "south", n, 60.0) for n in range(5)])
    wait_for(lambda: watcher.status("south", "cnc-1") == "ok", 10, "south's health")
    publish(mosquitto, [_instance_cnc(unique_topic, 1, "north", n, 95.0) for n in range(5)])
    mine = f"{prefix}/reroute/north/cnc-1"

    def advice() -> dict[str, Any] | None:
        found = [m for m in watcher.on("reroute") if m.topic == mine]
        return found[-1].json() if found and found[-1].payload else None

    wait_for(lambda: advice() is not None and advice()["candidates"], 10, "advice")
    assert [(c["site"], c["asset"]) for c in advice()["candidates"]] == [("south", "cnc-1")]
    status = _cli(parts[0], "status", "--json", "--wait", "2")
    fleet = {(h["site"], h["asset"]): h for h in map(orjson.loads, status.stdout.splitlines())}
    assert {k: (h["status"], h["instance"]) for k, h in fleet.items()} == {
        ("north", "cnc-1"): ("critical", f"meshwatch-{unique_topic}-1"),
        ("south", "cnc-1"): ("ok", f"meshwatch-{unique_topic}-2"),
    }
    for part in parts:
        part.stop()


def test_commands_reach_the_instance_that_holds_the_alert(
    mosquitto, data_dir, unique_topic, prefix, tmp_path, watcher
) -> None:
    """Every instance answers; the one that holds the alert decides.

    ``ack`` of the second instance's alert succeeds though the first refuses it; an unknown
    id is refused once both have answered; a silence gets one id on both, and one expire
    ends it on both.
    """
    parts = _instances(mosquitto, data_dir, unique_topic, prefix, tmp_path)
    publish(mosquitto, [_instance_cnc(unique_topic, 2, "south", n, 95.0) for n in range(5)])
    wait_for(lambda: len(watcher.alerts()) >= 1, 10, "south's alert")
    alert_id = watcher.alerts()[0]["id"]
    acked = _cli(parts[0], "ack", alert_id, "--comment", "on it")
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout == f"alert {alert_id} (hot on south/cnc-1) acknowledged by {_user()}\n"
    unknown = _cli(parts[0], "ack", "0123456789abcdef")
    assert (unknown.returncode, unknown.stderr.count("\n")) == (1, 1)
    assert "no open alert with id '0123456789abcdef'" in unknown.stderr
    added = _cli(parts[1], "silence", "add", "site=north", "--duration", "1h", "--comment", "pm")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    expired = _cli(parts[0], "silence", "expire", silence_id)
    assert expired.returncode == 0, expired.stderr
    for k, part in enumerate(parts, start=1):
        part.stop()
        with closing(sqlite3.connect(data_dir / f"i{k}" / "alerts.db")) as conn:
            saved = [orjson.loads(data) for (data,) in conn.execute("SELECT data FROM silences")]
        assert [s["id"] for s in saved] == [silence_id]
        assert saved[0]["ends_at"] < saved[0]["starts_at"] + 3600  # expired on both


def _user() -> str:
    return os.environ.get("USER") or "cli"
