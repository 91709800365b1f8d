"""Feedback and model resets survive a SIGKILL of a real ``meshwatch run`` (real mosquitto).

The command's reply comes once the change is durable; the pipeline is killed right after it.
Whether the scoring thread had applied the change by then is a race the test does not
control (it applies changes at its next batch or tick, within a second), so each test
checks what the state on disk says and then the guarantee for that case: a change pending
at the kill is applied after the restart, an applied one is not applied again, and a reset
model does not come back from an older checkpoint. ``tests/models/test_model_feedback.py``
drives each case deterministically in-process.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import random
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import BASE_TS, PipelineProcess, pipeline_env, publish, subscribe, wait_for

from ingest.embedded import EmbeddedStore
from ingest.settings import MqttSettings
from meshwatch.localservers import Mosquitto
from meshwatch.remote import request
from models.asset import AssetModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WARMUP = 100
# zscore keeps learning what it is taught (the default detector is being replaced); one
# anomaly rule without a minimum firing time or flap damping, told at once.
CONFIG = f"""
models:
  checkpoint_interval: 0.5
  profiles:
    - name: default
      warmup: {WARMUP}
      detectors: [{{type: zscore}}]
alerts:
  rules:
    - {{name: anomaly, type: anomaly, for_readings: 3, resolve_after: 10,
       keep_firing_for: 0s, flapping: false}}
  route: {{receivers: [mqtt], group_by: ["..."], group_wait: 0s, group_interval: 1s,
          repeat_interval: 1h}}
"""
SITE, ASSET = "s1", "cnc-1"


def _reading(rng: random.Random, n: int, *, hot: bool = False) -> bytes:
    metrics = {
        "spindle_temp_c": 60 + rng.gauss(0, 0.3) + (4.0 if hot else 0.0),
        "vibration_rms": 0.4 + rng.gauss(0, 0.01),
    }
    return orjson.dumps({"ts": BASE_TS + n * 1000, "kind": "cnc-mill", "metrics": metrics})


def _messages(prefix: str, start: int, count: int, *, hot: bool = False, asset: str = ASSET):
    rng = random.Random(start)
    topic = f"{prefix}/{SITE}/{asset}/telemetry"
    return [(topic, _reading(rng, n, hot=hot)) for n in range(start, start + count)]


def _pipeline(broker: Mosquitto, data_dir: Path, prefix: str, tmp_path: Path) -> PipelineProcess:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(CONFIG)
    env = pipeline_env(broker, data_dir, prefix, MESHWATCH_MQTT__PREFIX=_own(prefix))
    return PipelineProcess(env, tmp_path / "log", config)


def _own(prefix: str) -> str:
    """The pipeline's topic prefix: apart from the telemetry's (it ignores its own topics)."""
    return f"{prefix}-mw"


def _saved_model(data_dir: Path) -> AssetModel | None:
    """The asset's model as checkpointed in models.db."""
    with closing(sqlite3.connect(data_dir / "models.db")) as conn:
        row = conn.execute(
            "SELECT model FROM models WHERE site = ? AND asset = ?", (SITE, ASSET)
        ).fetchone()
    return None if row is None else pickle.loads(row[0])


def _change(data_dir: Path) -> tuple[float | None, int | None]:
    """(applied_at, taught) of the one change in models.db."""
    with closing(sqlite3.connect(data_dir / "models.db")) as conn:
        [row] = conn.execute("SELECT applied_at, taught FROM feedback").fetchall()
    return row


def _applied(data_dir: Path) -> bool:
    return _change(data_dir)[0] is not None


def _alerts(messages: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(m.payload) for m in messages if m.payload]


def _anomalies(data_dir: Path) -> list[dict[str, Any]]:
    store = EmbeddedStore(data_dir / "meshwatch.db")
    try:
        return [row["fields"] for row in store.rows("anomaly", site=SITE, asset=ASSET)]
    finally:
        store.close()


def _ask(broker: Mosquitto, prefix: str, command: Any, body: dict[str, Any]) -> dict[str, Any]:
    settings = MqttSettings(host=broker.host, port=broker.port, prefix=_own(prefix))
    return request(settings, command, body, timeout=10)


def test_feedback_normal_survives_a_sigkill_and_is_applied_once(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Killed after the reply: the teaching is applied once, and the pattern stays quiet."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, tmp_path)
    pipeline.start()
    listener, heard = subscribe(mosquitto, f"{_own(unique_topic)}/alerts/#")
    publish(mosquitto, _messages(unique_topic, 0, 150))
    publish(mosquitto, _messages(unique_topic, 150, 20, hot=True))
    wait_for(lambda: any(a["state"] == "firing" for a in _alerts(heard)), 30, "the alert")
    [fired] = [a for a in _alerts(heard) if a["state"] == "firing"]
    start, end = BASE_TS * 1_000_000, (BASE_TS + 200_000) * 1_000_000
    others = itertools.count(170)

    def checkpointed_flagged() -> bool:  # a batch after the interval saves the flagged model
        publish(mosquitto, _messages(unique_topic, next(others), 1, asset="other"))
        saved = _saved_model(data_dir)
        return saved is not None and copy.deepcopy(saved).accept(start, end) > 0

    wait_for(checkpointed_flagged, 30, "a checkpoint holding the flagged readings")

    reply = _ask(
        mosquitto, unique_topic, "feedback", {"id": fired["id"], "verdict": "normal", "by": "ana"}
    )
    pipeline.kill()
    assert (reply["resolved"], reply["teaching"]) == (True, "requested")
    at_kill = _change(data_dir)

    pipeline.start()
    wait_for(lambda: _applied(data_dir), 30, "the teaching applied")
    taught = _change(data_dir)[1]
    assert taught is not None and taught > 0
    if at_kill[0] is not None:  # applied before the kill: not again after it
        time.sleep(2.5)  # two ticks of the restarted pipeline
        assert _change(data_dir) == at_kill
    publish(mosquitto, _messages(unique_topic, 1000, 30, hot=True))  # the pattern, later on
    wait_for(lambda: len(_anomalies(data_dir)) >= 200, 30, "the hot readings scored")
    wait_for(lambda: len(_alerts(heard)) >= 2, 30, "the resolution")
    pipeline.stop()
    listener.disconnect()
    assert not any(f["anomalous"] for f in _anomalies(data_dir)[170:])
    states = [(a["id"], a["state"]) for a in _alerts(heard)]
    assert states == [(fired["id"], "firing"), (fired["id"], "resolved")]
    assert "resolved by feedback from ana" in _alerts(heard)[-1]["message"]


def test_model_reset_survives_a_sigkill_and_no_older_checkpoint_undoes_it(
    mosquitto: Mosquitto, data_dir: Path, unique_topic: str, tmp_path: Path
) -> None:
    """Killed after the reply: the model that runs on is the fresh one, warming up again."""
    pipeline = _pipeline(mosquitto, data_dir, unique_topic, tmp_path)
    pipeline.start()
    publish(mosquitto, _messages(unique_topic, 0, 200))
    others = itertools.count(200)

    def checkpointed_warm() -> bool:
        publish(mosquitto, _messages(unique_topic, next(others), 1, asset="other"))
        saved = _saved_model(data_dir)
        return saved is not None and saved.last_ts == (BASE_TS + 199_000) * 1_000_000

    wait_for(checkpointed_warm, 30, "a checkpoint of the warm model")

    body = {"action": "reset", "site": SITE, "asset": ASSET, "by": "ana", "comment": "bearing"}
    assert _ask(mosquitto, unique_topic, "model", body)["ok"] is True
    pipeline.kill()

    pipeline.start()
    wait_for(lambda: _applied(data_dir), 30, "the reset applied")
    publish(mosquitto, _messages(unique_topic, 1000, 10))
    wait_for(lambda: len(_anomalies(data_dir)) >= 210, 30, "the readings after the reset")
    code, _ = pipeline.stop()
    assert code == 0
    assert [f["warming_up"] for f in _anomalies(data_dir)[200:]] == [True] * 10
    saved = _saved_model(data_dir)
    assert saved is not None and (saved.learned, saved.warming_up) == (10, True)
