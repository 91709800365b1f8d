"""``meshwatch run --workers N`` (`meshwatch.workers`): every core, each asset in one worker.

Real mosquitto, a real reader and real worker processes. The single-process tests elsewhere
pin ``MESHWATCH_WORKERS=1``; these set 2.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from support import (
    PipelineProcess,
    Publisher,
    Watcher,
    expected_keys,
    fleet_messages,
    pipeline_env,
    publish,
    stored_count,
    stored_keys,
    wait_for,
)

from ingest.partition import owner
from meshwatch.localservers import Mosquitto, free_port

pytestmark = pytest.mark.integration

# The control chart scores from the 30th reading, so a short stream has anomaly rows to compare.
MODELS = """
models:
  profiles:
    - name: default
      warmup: 30
      detectors: [{type: control_chart}]
"""


def _workers(
    mosquitto: Mosquitto, data_dir: Path, unique: str, tmp_path: Path, count: int, **extra: str
) -> PipelineProcess:
    config = tmp_path / f"meshwatch-{count}.yaml"
    config.write_text(MODELS)
    # the reader's port and the workers' after it, free together
    ports = {"MESHWATCH_HTTP__PORT": str(free_port(span=count + 1))}
    env = pipeline_env(mosquitto, data_dir, unique, MESHWATCH_WORKERS=str(count), **ports, **extra)
    process = PipelineProcess(env, tmp_path / f"meshwatch-{count}.log", config)
    process.start()
    # The reader answers on the port itself, worker k on port + 1 + k; one is a single process.
    for k in range(count if count > 1 else 0):
        port = process.http_port + 1 + k
        wait_for(lambda p=port: _healthy(p), 20, f"worker {k} healthy")  # type: ignore[misc]
    return process


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def _models(data_dir: Path, k: int) -> set[tuple[str, str]]:
    db = data_dir / "workers" / str(k) / "models.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return set(conn.execute("SELECT site, asset FROM models").fetchall())


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_two_workers_store_exactly_what_one_stores(
    mosquitto: Mosquitto, tmp_path: Path, unique_topic: str
) -> None:
    """The same 4,000 readings: the same telemetry rows and the same anomaly scores."""
    stores = {}
    for count in (1, 2):
        data_dir = tmp_path / f"data-{count}"
        prefix = f"{unique_topic}-{count}"
        process = _workers(mosquitto, data_dir, prefix, tmp_path, count)
        messages = fleet_messages(prefix, 4000, assets=20)
        publish(mosquitto, messages)
        db = data_dir / "meshwatch.db"
        wait_for(lambda d=db: stored_count(d) >= 4000, 60, f"{count} worker(s) stored all")  # type: ignore[misc]
        process.stop(timeout=40)
        stores[count] = (stored_keys(db), _rows(db, "anomaly"))
    (one_keys, one_scores), (two_keys, two_scores) = stores[1], stores[2]
    assert sorted(two_keys) == sorted(one_keys)
    assert len(two_keys) == 4000
    assert len(one_scores) > 0
    assert [row[:2] + row[3:] for row in two_scores] == [row[:2] + row[3:] for row in one_scores]


def test_the_reader_takes_messages_only_once_every_worker_is_ready(
    mosquitto: Mosquitto, data_dir: Path, tmp_path: Path, unique_topic: str
) -> None:
    """A backlog does not wait in the reader, unacked, while the workers start."""
    process = _workers(mosquitto, data_dir, unique_topic, tmp_path, 2)
    process.stop(timeout=40)
    lines = process.log().splitlines()
    connected = next(i for i, line in enumerate(lines) if "ingest.subscriber: connected" in line)
    ready = [
        i for i, line in enumerate(lines) if line.endswith(("worker 0 ready", "worker 1 ready"))
    ]
    assert len(ready) == 2
    assert max(ready) < connected


def test_each_asset_is_modelled_by_exactly_one_worker(
    mosquitto: Mosquitto, data_dir: Path, tmp_path: Path, unique_topic: str
) -> None:
    """Every asset's model is in its owner's models.db, and in no other."""
    process = _workers(mosquitto, data_dir, unique_topic, tmp_path, 2)
    publish(mosquitto, fleet_messages(unique_topic, 2000, assets=20))
    wait_for(lambda: stored_count(data_dir / "meshwatch.db") >= 2000, 60, "all stored")
    process.stop(timeout=40)  # the models are checkpointed on the way out
    first, second = _models(data_dir, 0), _models(data_dir, 1)
    assert first.isdisjoint(second)
    assert first | second == {(f"s{a % 5}", f"a{a}") for a in range(20)}
    assert all(owner(site, asset, 2) == 0 for site, asset in first)
    local = subprocess.run(
        [sys.executable, "-m", "meshwatch", "status", "--local", "--json"],
        env={**process.env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    health = [orjson.loads(line) for line in local.stdout.splitlines()]
    assert {(h["site"], h["asset"]) for h in health} == first | second  # both workers' parts


def test_a_worker_killed_mid_stream_loses_nothing_stores_nothing_twice_and_tells_once(
    mosquitto: Mosquitto, data_dir: Path, tmp_path: Path, unique_topic: str
) -> None:
    """SIGKILL one worker during a 12,000-reading stream with a hot oven.

    The reader starts it again, every reading is stored once, and the oven's alert is told
    once.
    """
    prefix = f"{unique_topic}-mw"
    watcher = Watcher(mosquitto, prefix)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: hot, type: limit, severity: critical, condition: 'temp > 80', "
        "resolve_after: 2}\n"
    )
    process = _workers(
        mosquitto,
        data_dir,
        unique_topic,
        tmp_path,
        2,
        MESHWATCH_MQTT__PREFIX=prefix,
        MESHWATCH_ALERTS__RULES_FILE=str(rules),
    )
    assert process.proc is not None
    oven_owner = owner("north", "oven-1", 2)
    victim = _children(process.proc.pid)[oven_owner]
    messages = fleet_messages(unique_topic, 12_000, assets=40)
    hot = [
        (
            f"{unique_topic}/north/oven-1/telemetry",
            orjson.dumps({"ts": 1_767_225_600_000 + n * 1000, "metrics": {"temp": 95.0}}),
        )
        for n in range(30)
    ]
    db = data_dir / "meshwatch.db"
    publisher = Publisher(mosquitto)
    publisher.publish(hot)
    chunks = [messages[i : i + 1000] for i in range(0, len(messages), 1000)]
    for n, chunk in enumerate(chunks):
        publisher.publish(chunk)
        time.sleep(0.15)
        if n == 5:
            assert 0 < stored_count(db) < len(messages) + len(hot), "the kill lands mid-stream"
            os.kill(victim, signal.SIGKILL)
    publisher.wait()
    publisher.close()
    total = len(messages) + len(hot)
    wait_for(lambda: stored_count(db) >= total, 120, "every reading stored")
    wait_for(lambda: "restarting it in" in process.log(), 10, "the reader's restart")
    process.stop(timeout=40)
    watcher.close()
    keys = stored_keys(db)
    assert len(keys) == total
    assert set(keys) == expected_keys(messages) | expected_keys(hot)
    told = [(a["asset"], a["id"], a["state"]) for a in watcher.alerts()]
    firings = [t for t in told if t[0] == "oven-1" and t[2] == "firing"]
    assert len(firings) == 1, told
    # Every alert of the fleet's readings too: each told firing once, whichever worker holds it.
    assert len({t for t in told if t[2] == "firing"}) == len([t for t in told if t[2] == "firing"])
    assert f"worker {oven_owner} exited with signal SIGKILL" in process.log()


def _refused_start(env: dict[str, str]) -> str:
    """``meshwatch run --workers 2`` with ``env`` added: refused in one line, exit 2; the line."""
    result = subprocess.run(
        [sys.executable, "-m", "meshwatch", "run", "--workers", "2"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_a_bad_rules_file_stops_start_up_once_before_any_worker(tmp_path: Path) -> None:
    """The reader checks the configuration first: one line, exit status 2, no worker."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: hot\n    type: limit\n    condition: temp >> 80\n")
    line = _refused_start({"MESHWATCH_ALERTS__RULES_FILE": str(rules)})
    assert f"{rules}: line 2 (rules[0])" in line


def test_a_taken_worker_port_stops_start_up_once_before_any_worker(tmp_path: Path) -> None:
    """Worker 1 would serve on http.port + 2: taken, the reader says so and starts nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refused_start(
            {
                "MESHWATCH_HTTP__HOST": "127.0.0.1",
                "MESHWATCH_HTTP__PORT": str(port - 2),
                "MESHWATCH_DATA_DIR": str(tmp_path / "data"),
            }
        )
    assert f"127.0.0.1:{port} (worker 1's, http.port + 2)" in line
    assert not (tmp_path / "data" / "workers").exists()
