"""``record --duration`` and ``simulate --duration`` read durations the same way."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

import simulators.publisher
import simulators.recorder
from meshwatch.commands import recording, simulate

FORMS = ["1h30m", "90s", "2", "1.5h", "250ms", "1h 30m", "1w"]
BAD = ["soon", "0s", "-5", "1e3"]


def _record_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Any:
    seen: dict[str, Any] = {}

    def fake(*args: object, duration: float | None = None, **kwargs: object) -> int:
        seen["duration"] = duration
        return 0

    monkeypatch.setattr(simulators.recorder, "record", fake)
    out = str(tmp_path / "x.jsonl.gz")
    result = CliRunner().invoke(recording.record, ["--out", out, "--duration", text])
    return seen.get("duration", result)


def _simulate_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Any:
    seen: dict[str, Any] = {}

    def fake(*args: object, duration: float | None = None, **kwargs: object) -> SimpleNamespace:
        seen["duration"] = duration
        return SimpleNamespace(simulated_seconds=0, readings=0, messages=0, rate=0, labels=[])

    monkeypatch.setattr(simulators.publisher, "run", fake)
    labels = str(tmp_path / "labels.jsonl")
    args = ["small", "--duration", text, "--labels", labels, "--no-progress"]
    result = CliRunner().invoke(simulate.simulate, args, obj=None)
    return seen.get("duration", result)


@pytest.mark.parametrize("text", FORMS)
def test_record_and_simulate_accept_the_same_forms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    """Both commands accept every form of the one grammar, as the same number of seconds."""
    recorded = _record_seconds(monkeypatch, tmp_path, text)
    simulated = _simulate_seconds(monkeypatch, tmp_path, text)
    assert isinstance(recorded, float), recorded.output
    assert recorded == simulated


@pytest.mark.parametrize("text", BAD)
def test_record_and_simulate_refuse_the_same_forms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    """Both commands refuse a non-duration or zero with exit status 2, quoting the text."""
    for result in (
        _record_seconds(monkeypatch, tmp_path, text),
        _simulate_seconds(monkeypatch, tmp_path, text),
    ):
        assert result.exit_code == 2, result.output
        assert f"invalid duration {text!r}" in result.output
