"""Two meshwatch instances on a 3-node RabbitMQ cluster (`ingest.amqp`, docs/scaling.md).

Real RabbitMQ nodes (MQTT plugin, quorum queues), a real PostgreSQL for the shared model
checkpoints and alert state, real ``meshwatch run`` processes. The whole story runs once
(`story`): instance A alone raises a leak alert on every machine, instance B joins and A
hands it about half the partitions while both run, a hot machine gets reroute advice, then
one RabbitMQ node and instance B are killed with SIGKILL in the middle of a stream, and A
takes every partition over. Each test checks one fact of it.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import BASE_TS, PipelineProcess, Publisher, stored_keys, wait_for

from meshwatch.localservers import RabbitCluster, free_port

pytestmark = pytest.mark.integration

PREFIX = "plant"
SITES, ASSETS = 4, 16
PARTITIONS = 8
# The models score from the 30th reading; phase 1 gives every asset 100 readings.
CONFIG = """
models:
  profiles:
    - name: default
      warmup: 30
      detectors: [{type: operating_states}]
alerts:
  rules:
    - {name: hot, type: limit, condition: spindle_temp_c > 90, severity: critical}
    - {name: leak, type: limit, condition: pressure_bar > 5, severity: info}
    - {name: offline, type: deadman, severity: critical, for: 20m}
"""
# Phase 0 (A alone) and phase 1 (after the hand-over) leak on every machine: an info alert
# fires on each, without changing its health status (reroute candidates stay ok); it ends
# with the hot phase. Phase 1's 100 readings each are 1,600 s of event time: an old owner
# that kept the assets it gave up would call them offline (after 20 minutes) in it. An
# instance reads its partitions side by side, and its fleet clock is the newest reading of
# all, so a partition read behind the others by more than `for` makes its assets look
# silent: 20 minutes is more than phase 0 spans (320 s), and phases 0 and 1 are published a
# round at a time, so that little waits in the queues (docs/scaling.md).
PHASE0 = 20
# "FIRING critical s0/a0 (cnc-mill) rule=offline ...": the log receiver's line.
OFFLINE_FIRED = re.compile(r"FIRING \w+ (\S+)/(\S+) .*rule=offline")
HOT_ASSET = 0  # its partition's owner is found from the health messages


def _asset(a: int) -> tuple[str, str]:
    return f"s{a % SITES}", f"a{a}"


def _messages(
    start: int, count: int, *, hot: int | None = None, leak: bool = False
) -> list[tuple[str, bytes]]:
    """`count` readings of every asset in turn from reading `start` on (ms timestamps)."""
    out = []
    noise = random.Random(start)  # seeded: the same story every run
    for n in range(start, start + count):
        a = n % ASSETS
        site, asset = _asset(a)
        temp = 95.0 if a == hot else round(noise.gauss(60.0, 0.5), 3)
        body = {
            "ts": BASE_TS + n * 1000,
            "kind": "cnc-mill",
            "metrics": {
                "spindle_temp_c": temp,
                "rpm": round(noise.gauss(1000.0, 5.0), 2),
                "pressure_bar": 9.0 if leak else 3.0,
            },
        }
        out.append((f"{PREFIX}/{site}/{asset}/telemetry", orjson.dumps(body)))
    return out


class _Listener:
    """A 3.1.1 subscriber to the health, reroute and alert messages on one node.

    `health` and `advice` hold the retained state; `log` every health message in order
    (None for a cleared entry), `alerts` every alert notification.
    """

    def __init__(self, port: int) -> None:
        self.health: dict[tuple[str, str], dict[str, Any]] = {}
        self.advice: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[tuple[tuple[str, str], dict[str, Any] | None]] = []
        self.alerts: list[dict[str, Any]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311
        )
        self.client.on_connect = lambda c, *a: c.subscribe(
            [("meshwatch/health/+/+", 1), ("meshwatch/reroute/+/+", 1), ("meshwatch/alerts/+/+", 1)]
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # Retained messages come with the subscription; one published while it is being set
        # up may be missed (RabbitMQ's retained store is looked up apart from the binding).
        assert subscribed.wait(10), "the listener's subscription"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        _, kind, site, asset = msg.topic.split("/")
        message = orjson.loads(msg.payload) if msg.payload else None
        if kind == "alerts":
            if message is not None:
                self.alerts.append(message)
            return
        target = self.health if kind == "health" else self.advice
        if kind == "health":
            self.log.append(((site, asset), message))
        if message is None:
            target.pop((site, asset), None)
        else:
            target[(site, asset)] = message

    def leaks(self) -> dict[tuple[str, str], str]:
        """The id of each asset's firing leak alert, as its retained health lists it."""
        return {
            key: a["id"]
            for key, h in self.health.items()
            for a in h.get("alerts", [])
            if a["rule"] == "leak"
        }

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _instance(
    cluster: RabbitCluster, data_dir: Path, name: str, order: list[int], pg: str, tmp: Path
) -> PipelineProcess:
    config = tmp / "meshwatch.yaml"
    config.write_text(CONFIG)
    env = {
        "MESHWATCH_DATA_DIR": str(data_dir),
        "MESHWATCH_MQTT__HOST": "127.0.0.1",
        "MESHWATCH_MQTT__PORT": str(cluster.nodes[0].mqtt_port),
        "MESHWATCH_MQTT__PROTOCOL": "3.1.1",
        "MESHWATCH_MQTT__CLIENT_ID": name,
        "MESHWATCH_MQTT__TOPIC": PREFIX + "/{site}/{asset}/telemetry",
        "MESHWATCH_AMQP__URLS": orjson.dumps([cluster.nodes[i].amqp_url for i in order]).decode(),
        "MESHWATCH_AMQP__PARTITIONS": str(PARTITIONS),
        "MESHWATCH_AMQP__HEARTBEAT": "0.5",
        "MESHWATCH_AMQP__MEMBER_TIMEOUT": "2",
        "MESHWATCH_MODELS__CHECKPOINTS_URL": pg,
        "MESHWATCH_MODELS__CHECKPOINT_INTERVAL": "1",
        "MESHWATCH_HTTP__PORT": str(free_port()),
        "MESHWATCH_HTTP__HOST": "127.0.0.1",
        "MESHWATCH_WORKERS": "1",
    }
    process = PipelineProcess(env, tmp / f"{name}.log", config)
    process.start()
    return process


def _paced(sensors: Publisher, messages: list[tuple[str, bytes]]) -> None:
    """Publish a round of readings (one per asset) at a time, 50 ms apart."""
    for start in range(0, len(messages), ASSETS):
        sensors.publish(messages[start : start + ASSETS])
        time.sleep(0.05)


def _resolved(notifications: list[dict[str, Any]], rule: str) -> list[str]:
    """The alert ids of every notification of `rule` resolving, in order."""
    return [n["id"] for n in notifications if (n["rule"], n["state"]) == (rule, "resolved")]


def _held(process: PipelineProcess) -> list[int] | None:
    """The partitions an instance last said it holds (None: it said nothing yet)."""
    found = re.findall(r"partitions held: \[([0-9, ]*)\]", process.log())
    if not found:
        return None
    return [int(p) for p in found[-1].split(",") if p.strip()]


def _split(a: PipelineProcess, b: PipelineProcess) -> bool:
    held_a, held_b = _held(a), _held(b)
    return (
        held_a is not None
        and held_b is not None
        and bool(held_a)
        and bool(held_b)
        and set(held_a).isdisjoint(held_b)
        and set(held_a) | set(held_b) == set(range(PARTITIONS))
    )


def _saved_models(pg: str) -> int:
    with psycopg.connect(pg) as conn:
        row = conn.execute("SELECT count(*) FROM meshwatch_models").fetchone()
    return 0 if row is None else int(row[0])


def _anomalies(db: Path, since_ts_ns: int) -> list[tuple[str, str, bool]]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT site, asset, fields FROM anomaly WHERE ts >= ?", (since_ts_ns,)
        ).fetchall()
    return [(site, asset, bool(orjson.loads(fields)["warming_up"])) for site, asset, fields in rows]


@dataclass
class Story:
    """What happened, for the tests to check."""

    expected: set[tuple[str, str, int]] = field(default_factory=set)
    stored: list[tuple[str, str, int]] = field(default_factory=list)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    hot_advice: dict[str, Any] = field(default_factory=dict)
    survivor_held: list[int] | None = None
    taken_over: set[tuple[str, str]] = field(default_factory=set)
    after_kill: list[tuple[str, str, bool]] = field(default_factory=list)
    #: Each asset's leak alert id in A's health before B joined, and its owner's after.
    leaks_at_a: dict[tuple[str, str], str] = field(default_factory=dict)
    leaks_after: dict[tuple[str, str], str] = field(default_factory=dict)
    #: The health messages from B's joining to the end of phase 1, A's log up to the kill,
    #: every alert notification of the story.
    health_log: list[tuple[tuple[str, str], dict[str, Any] | None]] = field(default_factory=list)
    a_log: str = ""
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def moved(self) -> set[tuple[str, str]]:
        """The assets A held alone and handed over to B when B joined."""
        return {key for key, name in self.owner.items() if name == "meshwatch-b"}


@pytest.fixture(scope="module")
def story(
    rabbit_cluster: RabbitCluster, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    """Run the cluster's story once; the tests below read what happened."""
    tmp = tmp_path_factory.mktemp("cluster")
    data_dir = tmp / "data"
    data_dir.mkdir()
    db = data_dir / "meshwatch.db"
    s = Story()
    # A reads node 2 first, so it has to move when node 2 dies; B reads node 1.
    a = _instance(rabbit_cluster, data_dir, "meshwatch-a", [2, 1, 0], postgres_url, tmp)
    wait_for(lambda: _held(a) == list(range(PARTITIONS)), 30, f"A holds all; log:\n{a.log()}")
    node0 = SimpleNamespace(host="127.0.0.1", port=rabbit_cluster.nodes[0].mqtt_port)
    listener = _Listener(node0.port)
    sensors = Publisher(node0, "sensors", MQTTProtocolVersion.MQTTv311)  # type: ignore[arg-type]
    try:
        # Phase 0: A alone; every machine leaks, A raises and notifies every leak alert.
        phase0 = _messages(0, PHASE0 * ASSETS, leak=True)
        _paced(sensors, phase0)
        wait_for(lambda: len(listener.leaks()) == ASSETS, 60, f"A's leak alerts:\n{a.log()}")
        s.leaks_at_a = listener.leaks()
        # B joins: A hands about half the partitions over while both run.
        mark = len(listener.log)
        b = _instance(rabbit_cluster, data_dir, "meshwatch-b", [1, 0, 2], postgres_url, tmp)
        wait_for(lambda: _split(a, b), 30, f"A and B split the partitions; log:\n{b.log()}")
        # Phase 1: the leaks go on; every asset warms up, each instance tells its own health.
        phase1 = _messages(PHASE0 * ASSETS, 100 * ASSETS, leak=True)
        _paced(sensors, phase1)
        done = len(phase0) + len(phase1)
        wait_for(lambda: len(set(stored_keys(db))) >= done, 120, "phase 1 stored")
        wait_for(
            lambda: (
                len(listener.health) == ASSETS
                and {h["instance"] for h in listener.health.values()}
                == {"meshwatch-a", "meshwatch-b"}
            ),
            30,
            "every asset's health, from its owner",
        )
        s.owner = {key: h["instance"] for key, h in listener.health.items()}
        s.leaks_after = listener.leaks()
        s.health_log = listener.log[mark:]
        # The hot machine: critical, with advice naming healthy same-kind machines.
        start = (PHASE0 + 100) * ASSETS
        hot = _messages(start, ASSETS, hot=HOT_ASSET)
        sensors.publish(hot)
        hot_key = _asset(HOT_ASSET)
        wait_for(lambda: hot_key in listener.advice, 60, "reroute advice for the hot machine")
        s.hot_advice = listener.advice[hot_key]
        wait_for(lambda: _saved_models(postgres_url) == ASSETS, 30, "every model checkpointed")
        # The leaks ended with the hot round: each alert's end is told by its holder, within
        # a group interval (10 s, on the wall clock once the fleet is silent).
        wait_for(lambda: len(_resolved(listener.alerts, "leak")) >= ASSETS, 60, "every leak's end")
        s.a_log = a.log()
        # Phase 2: kill node 2 and instance B in the middle of the stream.
        start += ASSETS
        phase2 = _messages(start, 150 * ASSETS)
        sensors.publish(phase2)
        done += len(hot)
        wait_for(lambda: len(set(stored_keys(db))) >= done + 300, 120, "phase 2 under way")
        rabbit_cluster.kill_node(2)
        b.kill()
        stored_at_kill = set(stored_keys(db))
        sensors.wait(120)
        everything = phase0 + phase1 + hot + phase2
        total = len(everything)
        wait_for(lambda: len(set(stored_keys(db))) >= total, 180, f"all stored; A:\n{a.log()}")
        s.stored = stored_keys(db)
        s.expected = {
            (t.split("/")[1], t.split("/")[2], orjson.loads(p)["ts"] * 1_000_000)
            for t, p in everything
        }
        s.survivor_held = _held(a)
        b_assets = {key for key, name in s.owner.items() if name == "meshwatch-b"}
        s.taken_over = {
            (site, asset)
            for site, asset, ts in s.expected - stored_at_kill
            if (site, asset) in b_assets
        }
        s.after_kill = [
            row
            for row in _anomalies(db, (BASE_TS + start * 1000) * 1_000_000)
            if (row[0], row[1]) in s.taken_over
        ]
        s.notifications = list(listener.alerts)
        a.stop(timeout=40)
        yield s
    finally:
        sensors.close()
        listener.close()


def test_both_instances_hold_a_share_of_the_assets(story: Story) -> None:
    """Each instance publishes the health of some assets, and every asset has one owner."""
    assert set(story.owner.values()) == {"meshwatch-a", "meshwatch-b"}
    assert len(story.owner) == ASSETS


def test_a_node_and_an_instance_killed_lose_no_reading_and_store_none_twice(
    story: Story,
) -> None:
    """SIGKILL of a RabbitMQ node and of instance B mid-stream: every reading stored once."""
    assert len(story.stored) == len(story.expected)
    assert set(story.stored) == story.expected


def test_the_survivor_takes_every_partition_over(story: Story) -> None:
    """Instance A, alone, consumes all partitions, B's included."""
    assert story.survivor_held == list(range(PARTITIONS))
    assert story.taken_over, "B had consumed everything before it was killed: no takeover seen"


def test_a_partitions_models_are_warm_on_the_new_owner(story: Story) -> None:
    """B's assets, scored by A after the takeover, are not warming up: A loaded B's models."""
    assert story.after_kill
    assert not [row for row in story.after_kill if row[2]]


def test_reroute_advice_names_an_asset_the_other_instance_holds(story: Story) -> None:
    """The hot machine's owner advises healthy machines that only the other instance watches."""
    hot_owner = story.owner[_asset(HOT_ASSET)]
    candidates = [(c["site"], c["asset"]) for c in story.hot_advice["candidates"]]
    assert candidates
    assert any(story.owner[key] != hot_owner for key in candidates), (candidates, hot_owner)


def _notified(story: Story, rule: str, state: str) -> list[str]:
    """The alert ids of every notification of `rule` in `state`, in order."""
    return [n["id"] for n in story.notifications if (n["rule"], n["state"]) == (rule, state)]


def test_an_asset_moved_between_running_instances_keeps_its_firing_alert(story: Story) -> None:
    """B, which took the asset over from A, lists the same leak alert, still firing."""
    assert story.moved()
    assert {k: story.leaks_after[k] for k in story.moved()} == {
        k: story.leaks_at_a[k] for k in story.moved()
    }


def test_a_moved_firing_alert_is_notified_once(story: Story) -> None:
    """Every leak alert was told firing once (by A), whoever held its asset since."""
    fired = _notified(story, "leak", "firing")
    assert sorted(fired) == sorted(story.leaks_at_a.values())


def test_a_moved_alert_is_told_resolved_once(story: Story) -> None:
    """Each leak alert's end is told once, by its asset's holder then (B for those it took)."""
    resolved = _notified(story, "leak", "resolved")
    assert sorted(resolved) == sorted(story.leaks_at_a.values())


def test_the_old_owner_no_longer_lists_an_asset_it_gave_up(story: Story) -> None:
    """After B's first health message for a moved asset, A says nothing more of it."""
    late = []
    for key in story.moved():
        said = [m["instance"] if m else None for k, m in story.health_log if k == key]
        late += [key for who in said[said.index("meshwatch-b") :] if who == "meshwatch-a"]
    assert late == []


def test_the_old_owner_raises_no_offline_for_an_asset_it_gave_up(story: Story) -> None:
    """A fires no offline alert for a moved asset, nor says it is offline, until B dies."""
    fired = {(site, asset) for site, asset in OFFLINE_FIRED.findall(story.a_log)}
    said = {
        k
        for k, m in story.health_log
        if m is not None and (m["instance"], m["status"]) == ("meshwatch-a", "offline")
    }
    assert (fired | said) & story.moved() == set()
