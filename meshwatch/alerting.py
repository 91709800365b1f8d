"""Assembly of the alerts: state, engine, receivers, couriers and the MQTT connection.

Built in data-flow order and handed to each other: the state file, the MQTT publisher (which
also receives the commands), the receivers, the courier that delivers the outbox, the engine,
the ledger that hands the commands' actions to the store, the desks that take the commands
(silences, acks and shelves; verdicts and model resets, handed the models' feedback log;
history, handed a reader of the store), and the processor that plugs the engine into the
ingest pipeline.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry

from alerts.assetstate import SharedAlertState
from alerts.base import Receiver
from alerts.commands import handler
from alerts.commands.desk import AlertDesk
from alerts.commands.feedback import FeedbackDesk
from alerts.commands.history import HistoryDesk
from alerts.connection import MqttPublisher
from alerts.courier import Courier
from alerts.engine import AlertEngine
from alerts.errors import AlertsError, SharedStateError
from alerts.history.ledger import Ledger
from alerts.metrics import AlertMetrics
from alerts.processor import AlertProcessor
from alerts.receivers import (
    EmailReceiver,
    LogReceiver,
    MqttReceiver,
    MqttReceiverSettings,
    WebhookReceiver,
)
from alerts.settings import Alerting, ReceiverSpec, load
from alerts.state import AlertState
from ingest.errors import StoreError
from ingest.query import StoreReader, open_reader
from meshwatch.errors import ConfigError
from meshwatch.settings import Settings
from models.feedback import FeedbackLog

log = logging.getLogger("meshwatch")


@dataclass
class AlertsRuntime:
    """The running alerts: started by `start`, stopped by `close`."""

    engine: AlertEngine
    processor: AlertProcessor
    courier: Courier
    publisher: MqttPublisher
    receivers: dict[str, Receiver]
    reader: StoreReader
    #: Answers history queries off the connection's thread (a query may take a while).
    queries: ThreadPoolExecutor

    def start(self) -> None:
        """Connect to the broker and start delivering the outbox."""
        self.publisher.start()
        self.courier.start()

    def close(self) -> None:
        """Stop the deliveries and the commands, save the state, close the receivers.

        The connection closes before the state file, so no command arrives that could not
        be saved; the couriers stop first, so none is left waiting on the connection.
        """
        try:
            self.courier.close()
            self.queries.shutdown(wait=True, cancel_futures=True)
            self.publisher.close()
        finally:
            self.processor.close()
            for receiver in self.receivers.values():
                receiver.close()
            self.reader.close()


def alerting_of(settings: Settings) -> Alerting:
    """The alerting configuration in force; a bad rules or routes file is a `ConfigError`."""
    try:
        return load(settings.alerts)
    except AlertsError as exc:
        raise ConfigError(f"invalid alert configuration: {exc}") from None


def build_alerts(
    settings: Settings, registry: CollectorRegistry, feedback: FeedbackLog | None = None
) -> AlertsRuntime:
    """Build the alerts from settings; a bad rules or routes file is a `ConfigError`.

    `feedback` is the models' feedback log (None when models are off): verdicts of
    ``normal`` teach the models through it, and model resets go through it.
    """
    alerting = alerting_of(settings)
    metrics = AlertMetrics(registry)
    prefix = settings.mqtt.prefix
    try:
        state = AlertState(settings.state_dir() / "alerts.db")
    except StoreError as exc:
        raise ConfigError(f"invalid setting data_dir (MESHWATCH_DATA_DIR): {exc}") from None
    try:
        shared = _shared_state(settings)
    except ConfigError:
        state.close()
        raise
    desk: AlertDesk | None = None
    feedback_desk: FeedbackDesk | None = None
    history_desk: HistoryDesk | None = None

    def on_message(topic: str, payload: bytes) -> None:
        assert desk is not None
        if not topic.startswith(commands):
            desk.engine.hear(topic, payload)  # another instance's health or status
            return
        command = topic.rsplit("/", 1)[-1]
        if command == "history":
            # Read-only and possibly slow: answered on its own thread, so commands, peers'
            # health and PUBACKs are not held up behind it.
            queries.submit(answer, command, payload)
        else:
            answer(command, payload)

    def answer(command: str, payload: bytes) -> None:
        assert desk is not None
        reply = handler.handle(desk, command, payload, feedback_desk, history_desk)
        # Every instance answers every command: the sender tells the replies apart by this.
        reply["instance"] = settings.mqtt.client_id
        outcome = "ok" if reply["ok"] else "rejected"
        metrics.commands.labels(command, outcome).inc()
        if not reply["ok"]:
            log.warning("command %s rejected: %s", command, reply["error"])
        publisher.publish(f"{prefix}/cmd/result", orjson.dumps(reply))

    def on_connect() -> None:
        if desk is not None:
            desk.engine.republish()

    commands = f"{prefix}/cmd/"
    queries = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
    # The fleet beyond this instance: every instance's retained health, and whether it is up.
    peers = [f"{prefix}/health/+/+", f"{prefix}/status/+"]
    publisher = MqttPublisher(
        settings.mqtt,
        subscriptions=[*(commands + name for name in handler.COMMANDS), *peers],
        on_message=on_message,
        on_connect=on_connect,
    )
    receivers = _receivers(alerting, publisher, prefix)
    courier = Courier(
        settings.state_dir() / "alerts.db",
        receivers,
        metrics,
        retry_min=settings.alerts.retry_min,
        retry_max=settings.alerts.retry_max,
    )
    engine = AlertEngine(
        alerting.rules,
        alerting.route,
        state,
        metrics=metrics,
        publisher=publisher,
        prefix=prefix,
        reroute_settings=settings.alerts.reroute,
        on_queued=courier.poke,
        instance=settings.mqtt.client_id,
        shared=shared,
    )
    ledger = Ledger(engine)
    desk = AlertDesk(engine, ledger)
    feedback_desk = FeedbackDesk(engine, feedback, ledger)
    reader = open_reader(settings.influx, settings.data_dir)
    history_desk = HistoryDesk(engine, reader)
    processor = AlertProcessor(engine, ledger)
    return AlertsRuntime(engine, processor, courier, publisher, receivers, reader, queries)


def shared_state_url(settings: Settings) -> tuple[str, str] | None:
    """Where assets' alert state is shared, and the setting that says so (None: alerts.db).

    ``alerts.state_url``; unset, an instance of a RabbitMQ cluster shares it where its
    models are (``models.checkpoints_url``).
    """
    if settings.alerts.state_url is not None:
        return settings.alerts.state_url, "alerts.state_url (MESHWATCH_ALERTS__STATE_URL)"
    if settings.amqp.urls and settings.models.checkpoints_url is not None:
        setting = "models.checkpoints_url (MESHWATCH_MODELS__CHECKPOINTS_URL)"
        return settings.models.checkpoints_url, setting
    return None


def _shared_state(settings: Settings) -> SharedAlertState | None:
    found = shared_state_url(settings)
    if found is None:
        return None
    url, setting = found
    try:  # psycopg is the "cluster" extra, imported only when used
        from alerts.sharedstate import PostgresAlertState
    except ImportError as exc:
        raise ConfigError(
            f"invalid setting {setting}: needs {exc.name}: pip install 'meshwatch[cluster]'"
        ) from None
    try:
        return PostgresAlertState(url, settings.mqtt.client_id)
    except SharedStateError as exc:
        raise ConfigError(f"invalid setting {setting}: {exc}") from None


def _receivers(alerting: Alerting, publisher: MqttPublisher, prefix: str) -> dict[str, Receiver]:
    built: dict[str, Receiver] = {
        "mqtt": MqttReceiver("mqtt", MqttReceiverSettings(), publisher, prefix),
        "log": LogReceiver("log"),
    }
    for spec in alerting.receivers:
        built[spec.name] = _receiver(spec, publisher, prefix)
    return built


def _receiver(spec: ReceiverSpec, publisher: MqttPublisher, prefix: str) -> Receiver:
    try:
        if spec.webhook is not None:
            return WebhookReceiver(spec.name, spec.webhook)
        if spec.email is not None:
            return EmailReceiver(spec.name, spec.email)
        if spec.mqtt is not None:
            return MqttReceiver(spec.name, spec.mqtt, publisher, prefix)
        return LogReceiver(spec.name, spec.log)
    except AlertsError as exc:
        raise ConfigError(f"invalid alert configuration: {exc}") from None
