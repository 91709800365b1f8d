"""The subscriber with a batch out (``ahead``): what ``meshwatch run --workers`` reads with.

Against a real mosquitto, with a sink that records when each batch is prepared and committed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from support import publish, wait_for

from ingest.metrics import IngestMetrics
from ingest.pipeline import Message
from ingest.settings import IngestSettings, MqttSettings
from ingest.subscriber import Subscriber
from meshwatch.localservers import Mosquitto


@dataclass
class Numbered:
    """A batch as the recording sink hands it back: its number and messages."""

    number: int
    messages: list[Message]


class RecordingSink:
    """A `BatchSink` that only notes the order of its calls and what it committed."""

    def __init__(self) -> None:
        self.metrics = IngestMetrics()
        self.on_rejected = None
        self.events: list[tuple[str, int]] = []
        self.committed: list[Message] = []
        self.sizes: list[int] = []

    def prepare(self, messages: list[Message]) -> Numbered:
        self.events.append(("prepare", len(self.sizes)))
        self.sizes.append(len(messages))
        return Numbered(len(self.sizes) - 1, messages)

    def commit(self, prepared: Numbered) -> None:
        self.events.append(("commit", prepared.number))
        self.committed.extend(prepared.messages)

    def tick(self) -> None:
        pass


def test_the_next_batch_is_handed_on_before_the_last_is_committed_and_acks_stay_in_order(
    mosquitto: Mosquitto, unique_topic: str
) -> None:
    """With one batch ahead, batch k+1 is prepared before batch k is committed.

    Batches are committed in the order made, each message once, and every message is acked.
    """
    settings = MqttSettings(
        host=mosquitto.host,
        port=mosquitto.port,
        client_id=f"ahead-{unique_topic}",
        topic=f"{unique_topic}/{{site}}/{{asset}}/telemetry",
        receive_maximum=200,
    )
    sink = RecordingSink()
    subscriber = Subscriber(settings, IngestSettings(batch_max=1000), sink, ahead=1)
    stop = threading.Event()
    thread = threading.Thread(target=subscriber.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: subscriber.subscribed, 10, "the subscription")
        messages = [(f"{unique_topic}/s1/a{i % 9}/telemetry", b"%d" % i) for i in range(3000)]
        publish(mosquitto, messages)
        wait_for(lambda: len(sink.committed) == len(messages), 30, "every message committed")
    finally:
        stop.set()
        thread.join(10)
    assert [(m.topic, m.payload) for m in sink.committed] == messages
    commits = [number for event, number in sink.events if event == "commit"]
    assert commits == list(range(len(sink.sizes)))
    events = sink.events
    assert any(events.index(("prepare", k + 1)) < events.index(("commit", k)) for k in commits[:-1])
    assert max(sink.sizes) <= 100  # the broker's window of 200, shared by two batches
    acks = sink.metrics.registry.get_sample_value("meshwatch_acks_total")
    assert acks == len(messages)
