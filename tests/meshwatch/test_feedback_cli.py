"""``meshwatch feedback`` and ``meshwatch model reset``: what the user sees, through a broker.

The pipeline's side is `remotekit.Responder`, answering as `alerts.commands` does; the
commands' effects on a real pipeline are tested in ``test_feedback_durability.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from remotekit import Responder, env_for

from meshwatch.localservers import Mosquitto

ALERT = {"id": "a1", "rule": "anomaly", "site": "plant-a", "asset": "cnc-2", "state": "resolved"}


def _meshwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the meshwatch command line with `args` and these settings, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "meshwatch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _answer(**reply: Any) -> Any:
    def answer(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "alert": ALERT, **reply}

    return answer


@pytest.mark.integration
def test_feedback_normal_prints_one_line_saying_what_it_did(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """The verdict, who gave it, the resolution and the teaching, in one line."""
    answer = _answer(resolved=True, teaching="requested", replaced=None)
    with Responder(mosquitto, unique_topic, answer) as responder:
        result = _meshwatch(
            env_for(mosquitto, unique_topic),
            *("feedback", "a1", "normal", "--by", "bob", "--comment", "runs warm"),
        )
    assert (result.returncode, result.stdout) == (
        0,
        "alert a1 (anomaly on plant-a/cnc-2) marked normal by bob: resolved; "
        "the model of plant-a/cnc-2 learns the episode as normal\n",
    )
    [(command, body)] = responder.received
    assert (command, body["id"], body["verdict"], body["by"], body["comment"]) == (
        "feedback",
        "a1",
        "normal",
        "bob",
        "runs warm",
    )


@pytest.mark.integration
def test_feedback_fault_after_normal_says_how_to_make_the_model_forget(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """A fault replacing a normal verdict points at ``model reset``."""
    answer = _answer(resolved=False, teaching="none", replaced="normal")
    with Responder(mosquitto, unique_topic, answer):
        result = _meshwatch(env_for(mosquitto, unique_topic), "feedback", "a1", "fault")
    assert result.returncode == 0
    assert result.stdout.endswith(
        "; its model learned the episode as normal before: "
        "meshwatch model reset plant-a/cnc-2 makes it forget\n"
    )


@pytest.mark.integration
def test_feedback_the_pipeline_refuses_fails_with_its_error_in_one_line(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """An unknown alert id: exit 1 and the pipeline's error as the one line."""
    error = "no alert with id 'a9': none is open, and none resolved in the last 30d has it"

    def refuse(command: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": error}

    with Responder(mosquitto, unique_topic, refuse):
        result = _meshwatch(env_for(mosquitto, unique_topic), "feedback", "a9", "normal")
    assert (result.returncode, result.stderr) == (1, f"meshwatch: {error}\n")


@pytest.mark.integration
def test_model_reset_prints_one_line(mosquitto: Mosquitto, unique_topic: str) -> None:
    """The reset is sent with site, asset, who and why; one line says it."""
    reset = {"site": "plant-a", "asset": "cnc-2", "by": "bob", "comment": "new bearing"}
    with Responder(mosquitto, unique_topic, _answer(reset=reset)) as responder:
        result = _meshwatch(
            env_for(mosquitto, unique_topic),
            *("model", "reset", "plant-a/cnc-2", "--by", "bob", "--comment", "new bearing"),
        )
    assert (result.returncode, result.stdout) == (
        0,
        "model of plant-a/cnc-2 reset by bob: it learns again from scratch (warm-up)\n",
    )
    [(command, body)] = responder.received
    assert (command, body["action"], body["site"], body["asset"]) == (
        "model",
        "reset",
        "plant-a",
        "cnc-2",
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["feedback", "a1", "maybe"], "'maybe' is not one of 'normal', 'fault'"),
        (["feedback", "a1"], "Missing argument 'normal|fault'"),
        (["model", "reset", "plant-a"], "'plant-a' is not SITE/ASSET"),
        (["model", "reset", "plant a/cnc-2"], "'plant a/cnc-2' is not SITE/ASSET"),
        (["model", "reset", "plant-a/cnc/2"], "'plant-a/cnc/2' is not SITE/ASSET"),
    ],
    ids=["unknown-verdict", "no-verdict", "no-asset", "bad-site", "three-levels"],
)
def test_malformed_feedback_or_reset_exits_2_in_one_line(args: list[str], says: str) -> None:
    """Refused before anything is sent (no broker is needed): exit 2, one line."""
    result = _meshwatch({}, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert says in result.stderr
