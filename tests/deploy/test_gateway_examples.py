"""The gateway examples of docs/contract.md, run as written: their output passes the decoder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ingest.decode import Decoder
from ingest.topic import TopicTemplate

CONTRACT = Path(__file__).parents[2] / "docs" / "contract.md"
DECODER = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))


def _block(language: str) -> str:
    (code,) = re.findall(rf"```{language}\n(.*?)```", CONTRACT.read_text(), flags=re.S)
    return code


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_red_function_builds_a_message_the_decoder_accepts() -> None:
    """The function node's code, given a sample payload, yields a valid topic and payload."""
    harness = (
        "const env = {get: (name) => ({SITE: 'berlin'})[name]};\n"
        "let msg = {payload: {asset: 'cnc-1', rpm: 12000, vib: 0.41, temp: 61.2}};\n"
        f"msg = (function (msg) {{\n{_block('javascript')}\n}})(msg);\n"
        "console.log(JSON.stringify({topic: msg.topic, qos: msg.qos, payload: msg.payload}));\n"
    )
    out = subprocess.run(
        ["node", "-e", harness], capture_output=True, text=True, check=True, timeout=30
    )
    msg = json.loads(out.stdout)
    assert (msg["topic"], msg["qos"]) == ("plant/berlin/cnc-1/telemetry", 1)
    (reading,) = DECODER.decode(msg["topic"], json.dumps(msg["payload"]).encode(), time.time_ns())
    assert reading.metrics == {
        "spindle_rpm": 12000.0,
        "vibration_rms": 0.41,
        "spindle_temp_c": 61.2,
    }
    assert reading.kind == "cnc-mill"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_the_microcontroller_payload_builder_writes_what_the_decoder_accepts(
    tmp_path: Path,
) -> None:
    """The C function, compiled and run, gives a payload with ts and seq; NaN is refused."""
    main = r"""
int main(void) {
    char buf[256];
    int n = build_payload(buf, sizeof buf, 4711, 1, 1.2043, 3.87);
    if (n < 0) return 2;
    puts(buf);
    return build_payload(buf, sizeof buf, 4712, 1, NAN, 3.87) == -1 ? 0 : 3;
}
"""
    source = tmp_path / "payload.c"
    source.write_text(_block("c") + main)
    binary = tmp_path / "payload"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source), "-lm"], check=True, timeout=60)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True, timeout=10)
    payload = out.stdout.strip().encode()
    (reading,) = DECODER.decode("plant/berlin/conveyor-2/telemetry", payload, time.time_ns())
    assert reading.metrics == {"belt_speed_mps": 1.204, "motor_current_a": 3.87}
    assert reading.seq == 4711
    assert abs(reading.ts - time.time_ns()) < 60 * 10**9  # the ms clock it read, not 1970
