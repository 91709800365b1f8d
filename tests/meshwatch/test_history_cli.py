"""``meshwatch alerts history`` against a running pipeline, through the broker.

Real mosquitto and ``meshwatch run`` as a subprocess, an oven that overheats and cools down,
and the CLI as a user runs it: ``ack``, ``feedback``, then ``alerts history`` (the table,
``--json`` and ``--summary``) shows the episode with who did what and when, and what each
receiver was sent. Bad input and a broker where no pipeline answers give one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from remotekit import env_for
from support import BASE_TS, PipelineProcess, pipeline_env, publish, subscribe, wait_for

from meshwatch.localservers import Mosquitto

pytestmark = [pytest.mark.integration]

# One limit rule to two receivers; no repeats within the test, no models.
CONFIG = """
alerts:
  rules:
    - {name: hot, type: limit, severity: critical, condition: "temp > 80", resolve_after: 2}
  route: {receivers: [mqtt, log], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
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


def _meshwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the meshwatch command line with `args` and these settings, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# The history tests only read the one episode: the pipeline and the episode (`handled`) are the
# module's, made once.


@pytest.fixture(scope="module")
def telemetry() -> str:
    """The module's telemetry prefix (`unique_topic`'s form)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def prefix(telemetry: str) -> str:
    """The pipeline's own prefix, apart from the telemetry's."""
    return f"{telemetry}-mw"


@pytest.fixture(scope="module")
def pipeline(
    mosquitto: Mosquitto, telemetry: str, prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineProcess]:
    tmp_path = tmp_path_factory.mktemp("history")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = tmp_path / "meshwatch.yaml"
    config.write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        # module-scoped: set up before the per-test `clean_environ`, so clean it here
        for name in list(os.environ):
            if name.startswith("MESHWATCH_"):
                patch.delenv(name)
        env = pipeline_env(mosquitto, data_dir, telemetry, MESHWATCH_MQTT__PREFIX=prefix)
        process = PipelineProcess(env, tmp_path / "meshwatch.log", config)
        process.start()
        # the autouse `no_stray_pipelines` kills after each test what is listed: this one
        # serves the whole module and is stopped below
        PipelineProcess.started.remove(process)
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def handled(
    mosquitto: Mosquitto, telemetry: str, prefix: str, pipeline: PipelineProcess
) -> Iterator[tuple[dict[str, str], str]]:
    """An oven fault, acked by ana, confirmed by bob, resolved: the CLI's env and alert id."""
    env = env_for(mosquitto, prefix)
    listener, heard = subscribe(mosquitto, f"{prefix}/alerts/#")

    def alerts() -> list[dict[str, Any]]:
        return [orjson.loads(m.payload) for m in heard if m.payload]

    publish(mosquitto, _ovens(telemetry, 0, 10, hot=True))
    wait_for(lambda: bool(alerts()), 20, "the firing notification")
    alert_id = alerts()[0]["id"]
    acked = _meshwatch(env, "ack", alert_id, "--by", "ana", "--comment", "on my way")
    assert acked.returncode == 0, acked.stderr
    judged = _meshwatch(
        env, "feedback", alert_id, "fault", "--by", "bob", "--comment", "bearing worn"
    )
    assert judged.returncode == 0, judged.stderr
    publish(mosquitto, _ovens(telemetry, 10, 20, hot=False))
    wait_for(lambda: alerts()[-1]["state"] == "resolved", 20, "the resolution")
    listener.disconnect()

    def recorded() -> bool:  # the actions reach the store with the pipeline's next tick
        done = _meshwatch(env, "alerts", "history", "--json")
        episodes = orjson.loads(done.stdout)["episodes"] if done.returncode == 0 else []
        return bool(episodes) and len(episodes[0]["actions"]) == 2

    wait_for(recorded, 20, "the ack and the verdict in the history")
    yield env, alert_id


def _history(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = _meshwatch(env, "alerts", "history", "--json", *args)
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = orjson.loads(done.stdout)
    return reply


def test_history_lists_the_episode_with_its_times_actions_and_notifications(
    handled: tuple[dict[str, str], str],
) -> None:
    """Fired and resolved times, duration, the ack and the verdict, one notice each way."""
    env, alert_id = handled
    reply = _history(env, "site=s1", "asset=~oven-.*")
    [episode] = reply["episodes"]
    assert (reply["total"], reply["more"]) == (1, 0)
    assert (episode["id"], episode["rule"], episode["site"], episode["asset"]) == (
        alert_id,
        "hot",
        SITE,
        ASSET,
    )
    assert (episode["severity"], episode["kind"], episode["open"]) == ("critical", "oven", False)
    assert episode["fired_at"] == "2026-01-01T00:00:00.000Z"
    assert episode["resolved_at"] == "2026-01-01T00:00:11.000Z"
    assert episode["duration_s"] == 11.0
    assert [(a["action"], a["by"], a.get("comment")) for a in episode["actions"]] == [
        ("ack", "ana", "on my way"),
        ("feedback", "bob", "bearing worn"),
    ]
    assert episode["actions"][1]["verdict"] == "fault"
    told = {r: (n["firing"], n["resolved"]) for r, n in episode["notifications"].items()}
    assert told == {"mqtt": (1, 1), "log": (1, 1)}


def test_history_table_says_who_did_what_and_who_was_told(
    handled: tuple[dict[str, str], str],
) -> None:
    """The table names the ack and the verdict with their authors, and the receivers."""
    env, _ = handled
    done = _meshwatch(env, "alerts", "history")
    assert done.returncode == 0, done.stderr
    for shown in ("s1/oven-1", "hot", "ack ana", "feedback fault bob", "mqtt 2 (1 resolved)"):
        assert shown in done.stdout
    assert done.stdout.splitlines()[-1].startswith("1 episode from 2025-12-25 ")


def test_history_summary_counts_per_asset_and_rule(handled: tuple[dict[str, str], str]) -> None:
    """Fired once, a confirmed fault, no false alarm; acked and resolved once."""
    env, _ = handled
    summary = _history(env, "--summary")["summary"]
    [asset] = summary["assets"]
    [rule] = summary["rules"]
    assert (asset["key"], rule["key"]) == ("s1/oven-1", "hot")
    for tally in (asset, rule):
        assert (tally["fired"], tally["false_alarms"], tally["faults"]) == (1, 0, 1)
        assert (tally["acked"], tally["resolved"], tally["mttr_s"]) == (1, 1, 11.0)
        assert tally["mtta_s"] is not None and tally["mtta_s"] >= 0
    table = _meshwatch(env, "alerts", "history", "--summary")
    assert "per asset" in table.stdout and "per rule" in table.stdout


def test_history_matchers_that_select_nothing_list_nothing(
    handled: tuple[dict[str, str], str],
) -> None:
    """Another site's history is empty."""
    env, _ = handled
    assert _history(env, "site=elsewhere")["episodes"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("line=3",), "meshwatch: matcher 'line=3': unknown label 'line'"),
        (("--since", "soon"), "meshwatch: Invalid value for '--since': invalid duration 'soon'"),
        (("--since", "0s"), "meshwatch: Invalid value for '--since': invalid duration '0s'"),
    ],
    ids=["bad-matcher", "bad-since", "zero-since"],
)
def test_bad_input_is_one_line_and_exit_2(
    mosquitto: Mosquitto, unique_topic: str, args: tuple[str, ...], says: str
) -> None:
    """Refused before anything is sent: one line on stderr, exit status 2."""
    done = _meshwatch(env_for(mosquitto, unique_topic), "alerts", "history", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(says)


def test_no_pipeline_answering_is_one_line_and_exit_1(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """No pipeline on this prefix: the wait ends with one line and exit status 1."""
    env = env_for(mosquitto, unique_topic)
    done = _meshwatch(env, "alerts", "history", "--timeout", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("meshwatch: no reply from a running pipeline")
