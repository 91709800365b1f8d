"""``meshwatch demo``: a local broker, the pipeline and a few publishing assets, end to end.

Starts mosquitto on a free port, runs the pipeline on the embedded store in the data dir,
publishes a small fleet's readings (single and batched messages, plus a handful of malformed
ones), waits until every good reading is stored, and prints what arrived. The fleet here is a
stand-in until the fleet simulator lands; it speaks MQTT exactly as a sensor would.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ingest.embedded import EmbeddedStore
from ingest.topic import TopicTemplate
from meshwatch.app import build
from meshwatch.localservers import Mosquitto
from meshwatch.settings import Settings

_KINDS = {
    "cnc-mill": {
        "spindle_rpm": 12_000.0,
        "motor_current_a": 14.0,
        "vibration_rms": 0.4,
        "spindle_temp_c": 55.0,
    },
    "3d-printer": {"nozzle_temp_c": 215.0, "bed_temp_c": 60.0, "extruder_current_a": 0.8},
    "air-compressor": {"discharge_bar": 7.5, "motor_current_a": 32.0, "oil_temp_c": 70.0},
    "conveyor": {"belt_speed_mps": 1.2, "motor_current_a": 5.5, "vibration_rms": 0.2},
}
_SITES = ("berlin", "porto", "lyon")
# Malformed messages a demo shows being rejected, with the reason each earns.
_BAD_MESSAGES = (
    (b"not json at all", "bad_json"),
    (b'{"metrics": {"spindle_temp_c": "hot"}}', "bad_metric_value"),
    (b'{"metrics": {}}', "no_metrics"),
    (b'{"ts": "yesterday", "metrics": {"t": 1}}', "bad_timestamp"),
    (b'{"metrics": {"t": NaN}}', "non_finite"),
)


def _payload(kind: str, ts: float, rng: random.Random, phase: float) -> dict[str, object]:
    load = 0.5 + 0.5 * math.sin(ts / 600 + phase)  # a ten-minute duty cycle
    metrics = {
        name: round(base * (0.8 + 0.4 * load) * (1 + rng.gauss(0, 0.02)), 4)
        for name, base in _KINDS[kind].items()
    }
    return {"ts": round(ts, 3), "kind": kind, "metrics": metrics}


def run_demo(settings: Settings, *, assets: int, readings: int) -> None:
    """Run the demo; everything it stores stays in ``settings.data_dir``."""
    console = Console()
    broker = Mosquitto(settings.data_dir / "demo-broker")
    broker.start()
    settings = settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(update={"host": broker.host, "port": broker.port}),
            "influx": settings.influx.model_copy(update={"url": None}),
            "http": settings.http.model_copy(update={"port": 0}),
        }
    )
    app = build(settings)
    worker = threading.Thread(target=app.run, name="pipeline")
    worker.start()
    # The pipeline's session is new: what is published before it subscribed is not for it.
    subscribed_by = time.monotonic() + 30
    while not app.subscriber.subscribed and time.monotonic() < subscribed_by:
        time.sleep(0.02)
    store = EmbeddedStore(settings.data_dir / "meshwatch.db")
    try:
        # Earlier demos' data stays in the data dir: count what this run adds.
        before = _per_asset(store)
        scores_before = _scores(store)
        rejected_before = Counter(app.deadletters.counts())
        expected, sent_bad = _publish_fleet(settings, broker, assets, readings, console)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("storing readings", total=expected)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                stored = store.count("telemetry") - before.total()
                progress.update(task, completed=stored)
                if stored >= expected:
                    break
                time.sleep(0.1)
        rejected = Counter(app.deadletters.counts()) - rejected_before
        _summary(console, store, _per_asset(store) - before, rejected, sent_bad)
        scored = _scores(store) - scores_before
        default = next(p for p in settings.models.profiles if p.name == "default")
        console.print(
            f"anomaly records: {scored['records']} ({scored['past warm-up']} past the "
            f"{default.warmup}-reading warm-up, {scored['flagged']} flagged; "
            "no faults are injected in this demo)"
        )
    finally:
        store.close()
        app.stop.set()
        worker.join(15)
        broker.stop()


def _publish_fleet(
    settings: Settings, broker: Mosquitto, assets: int, readings: int, console: Console
) -> tuple[int, int]:
    rng = random.Random(7)
    template = TopicTemplate.parse(settings.mqtt.topic)
    fleet = [
        (_SITES[i % len(_SITES)], f"asset-{i:03d}", list(_KINDS)[i % len(_KINDS)])
        for i in range(assets)
    ]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    start = time.time() - readings  # one reading a second, ending now
    infos = []
    expected = 0
    started = time.perf_counter()
    for n, (site, asset, kind) in enumerate(fleet):
        topic = template.topic(site, asset)
        docs = [_payload(kind, start + i, rng, phase=n) for i in range(readings)]
        batch = 10 if n % 3 == 0 else 1  # every third asset batches ten readings a message
        for i in range(0, readings, batch):
            chunk = docs[i : i + batch]
            body = orjson.dumps(chunk if batch > 1 else chunk[0])
            infos.append(client.publish(topic, body, qos=1))
        expected += readings
    for payload, _reason in _BAD_MESSAGES:
        infos.append(client.publish(template.topic(*fleet[0][:2]), payload, qos=1))
    infos.append(client.publish(template.topic("bad site", "x"), b'{"t": 1}', qos=1))
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()
    elapsed = time.perf_counter() - started
    console.print(
        f"published {expected} readings from {assets} assets at {len(_SITES)} sites "
        f"in {len(infos)} messages ({elapsed:.1f} s)"
    )
    return expected, len(_BAD_MESSAGES) + 1


def _per_asset(store: EmbeddedStore) -> Counter[tuple[str, str, str]]:
    return Counter(
        (str(r["site"]), str(r["asset"]), str(r["kind"])) for r in store.rows("telemetry")
    )


def _scores(store: EmbeddedStore) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in store.rows("anomaly"):
        fields = row["fields"]
        assert isinstance(fields, dict)
        counts["records"] += 1
        counts["past warm-up"] += not fields["warming_up"]
        counts["flagged"] += bool(fields["anomalous"])
    return counts


def _summary(
    console: Console,
    store: EmbeddedStore,
    per_asset: Counter[tuple[str, str, str]],
    rejected: Counter[str],
    sent_bad: int,
) -> None:
    table = Table(title="readings stored by this run")
    for column in ("site", "asset", "kind", "readings"):
        table.add_column(column)
    for (site, asset, kind), n in sorted(per_asset.items()):
        table.add_row(site, asset, kind, str(n))
    console.print(table)
    console.print(
        f"dead letters: {sum(rejected.values())} kept of {sent_bad} malformed sent "
        f"({', '.join(f'{r} {n}' for r, n in rejected.items())})"
    )
    console.print(f"data: {store.path}  (try: meshwatch deadletters)")
