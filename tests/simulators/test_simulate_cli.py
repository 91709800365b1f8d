"""The runner and ``meshwatch simulate``: real publishing to mosquitto, pacing, errors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from support import Watcher, wait_for

from meshwatch.commands.simulate import simulate
from meshwatch.localservers import Mosquitto, free_port
from simulators.fleet import AssetSpec, FaultSpec, FleetSpec, SiteSpec, load_fleet, shipped
from simulators.groundtruth import read_labels
from simulators.publisher import RunSummary, run

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000


@pytest.fixture
def subscriber(mosquitto: Mosquitto, unique_topic: str):
    sub = Watcher(mosquitto, unique_topic)
    yield sub
    sub.close()


def _fleet() -> FleetSpec:
    sites = [
        SiteSpec(
            name=name,
            assets=[AssetSpec(id="cnc-1", kind="cnc-mill"), AssetSpec(id="c", kind="conveyor")],
        )
        for name in ("berlin", "lyon")
    ]
    return FleetSpec(sites=sites)


def _run(broker: Mosquitto, prefix: str, fleet: FleetSpec, **options: Any) -> RunSummary:
    """A run of `fleet` on the test broker, under the test's own topic prefix, no progress bar."""
    topic = prefix + "/{site}/{asset}/telemetry"
    return run(fleet, host=broker.host, port=broker.port, topic=topic, progress=False, **options)


@pytest.mark.integration
def test_a_run_publishes_each_reading_as_a_design_payload(
    mosquitto: Mosquitto, subscriber: Watcher, unique_topic: str
) -> None:
    """``count=200`` publishes 200 single-reading messages on the asset's topic, valid payloads."""
    summary = _run(
        mosquitto,
        unique_topic,
        _fleet(),
        speed=None,
        count=200,
        start_ns=START,
    )
    assert (summary.readings, summary.messages) == (200, 200)
    wait_for(lambda: len(subscriber.messages) >= 200, 20, "200 messages")
    topics = set()
    for topic, payload in [(m.topic, m.payload) for m in subscriber.messages]:
        doc = orjson.loads(payload)
        assert set(doc) == {"ts", "kind", "seq", "metrics"}
        assert doc["ts"].startswith("2026-01-01T00:00:") and doc["ts"].endswith("Z")
        assert doc["kind"] == ("cnc-mill" if "/cnc-1/" in topic else "conveyor")
        topics.add(topic)
    assert topics == {
        f"{unique_topic}/{site}/{asset}/telemetry"
        for site in ("berlin", "lyon")
        for asset in ("cnc-1", "c")
    }
    assert len(subscriber.messages) == 200


@pytest.mark.integration
def test_batching_publishes_arrays_of_one_asset(
    mosquitto: Mosquitto, subscriber: Watcher, unique_topic: str
) -> None:
    """``batch=5`` over 10 simulated seconds sends each asset's 10 readings as 2 arrays of 5."""
    summary = _run(
        mosquitto,
        unique_topic,
        _fleet(),
        speed=None,
        duration=10,
        batch=5,
        start_ns=START,
    )
    assert (summary.readings, summary.messages) == (40, 8)
    wait_for(lambda: len(subscriber.messages) >= 8, 20, "8 messages")
    for topic, payload in [(m.topic, m.payload) for m in subscriber.messages]:
        docs = orjson.loads(payload)
        assert isinstance(docs, list) and len(docs) == 5
        kinds = {d["kind"] for d in docs}
        assert len(kinds) == 1
        seqs = [d["seq"] for d in docs]
        assert seqs in ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), topic


@pytest.mark.integration
def test_speed_paces_simulated_time_by_the_wall_clock(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """At speed 10, 20 simulated seconds take about 2 wall seconds (within 30 %)."""
    summary = _run(
        mosquitto,
        unique_topic,
        _fleet(),
        speed=10,
        duration=20,
    )
    assert summary.readings == 80
    assert 0.7 * 10 <= summary.simulated_seconds / summary.seconds <= 1.3 * 10


@pytest.mark.integration
def test_a_run_writes_its_labels(mosquitto: Mosquitto, unique_topic: str, tmp_path: Path) -> None:
    """The labels file holds the faults that started, open ends closed at the run's end."""
    fault = FaultSpec(site="lyon", asset="c", type="sudden_failure", onset=5)
    late = FaultSpec(site="lyon", asset="cnc-1", type="overheating", onset=60)
    labels = tmp_path / "labels.jsonl"
    summary = _run(
        mosquitto,
        unique_topic,
        _fleet().model_copy(update={"faults": [late]}),
        speed=None,
        duration=10,
        start_ns=START,
        labels_path=labels,
        extra_faults=[fault],
    )
    assert summary.readings == 35  # lyon/c stops after its 5th reading
    [label] = read_labels(labels)
    assert (label.site, label.asset, label.fault) == ("lyon", "c", "sudden_failure")
    assert (label.start, label.end) == (START + 5 * S, START + 10 * S)


@pytest.mark.integration
def test_the_command_publishes_and_prints_a_summary(
    mosquitto: Mosquitto,
    subscriber: Watcher,
    unique_topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``simulate small --speed 0 --count 120`` publishes 120 readings and says so on one line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MESHWATCH_MQTT__HOST", mosquitto.host)
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", str(mosquitto.port))
    monkeypatch.setenv("MESHWATCH_MQTT__TOPIC", unique_topic + "/{site}/{asset}/telemetry")
    result = CliRunner().invoke(
        simulate,
        [
            "small",
            "--speed",
            "0",
            "--count",
            "120",
            "--no-progress",
            "--fault",
            "berlin/cnc-2:dropouts@0",
        ],
        obj=None,
    )
    assert result.exit_code == 0, result.output
    assert "120 readings in 120 messages" in result.output
    assert "1 faults labelled in small-labels.jsonl" in result.output
    wait_for(lambda: len(subscriber.messages) >= 120, 20, "120 messages")
    assert [label.fault for label in read_labels(tmp_path / "small-labels.jsonl")] == ["dropouts"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nope.yaml"], "nope.yaml: no such fleet file"),
        (["small", "--fault", "berlin/cnc-1:melting@1m"], "bad --fault 'berlin/cnc-1:melting@1m'"),
        (["small", "--fault", "berlin/cnc-9:overheating@1m"], "no asset 'cnc-9' at site 'berlin'"),
        (["small", "--duration", "a while"], "bad --duration"),
    ],
    ids=["missing-fleet", "bad-fault", "unknown-asset", "bad-duration"],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    """A bad fleet, ``--fault`` or ``--duration`` ends with exit status 2 and one line."""
    result = CliRunner().invoke(simulate, args, obj=None)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unreachable_broker_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """No broker at the configured port: exit status 1 and a line naming host and port."""
    port = free_port()
    monkeypatch.setenv("MESHWATCH_MQTT__PORT", str(port))
    monkeypatch.setenv("MESHWATCH_MQTT__HOST", "127.0.0.1")
    result = CliRunner().invoke(simulate, ["small", "--count", "1", "--no-progress"], obj=None)
    assert result.exit_code == 1, result.output
    assert f"cannot connect to the broker at 127.0.0.1:{port}" in result.output


def test_the_shipped_small_fleet_runs_its_faults_well_after_the_default_warm_up() -> None:
    """Every fault starts after 30 minutes (well after the ~7-minute default warm-up) and by 75."""
    onsets = [f.onset for f in load_fleet(shipped("small")).faults]
    assert onsets and all(1800 < onset <= 4500 for onset in onsets)


@pytest.mark.integration
def test_a_stop_event_ends_an_unbounded_run_and_writes_labels(
    mosquitto: Mosquitto, subscriber: Watcher, unique_topic: str, tmp_path: Path
) -> None:
    """A run without duration or count ends when ``stop`` is set, and still writes its labels."""
    stop = threading.Event()
    subscriber.client.on_message = lambda *_: stop.set()  # the first message ends the run
    labels = tmp_path / "labels.jsonl"
    summary = _run(
        mosquitto,
        unique_topic,
        _fleet(),
        speed=1,
        labels_path=labels,
        stop=stop,
    )
    assert summary.readings >= 1
    assert labels.exists() and read_labels(labels) == []
