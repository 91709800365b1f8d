"""Pipeline assembly: builds the parts from settings in data-flow order and runs them.

A single process reads the broker itself (`ingest.subscriber.Subscriber`), or its share of a
RabbitMQ cluster's partitions with ``amqp.urls`` (`ingest.amqp.AmqpSource`); a worker of
``meshwatch run --workers`` reads its slices from the reader (`ingest.handoff.Handoff`,
`meshwatch.workers`).
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import FrameType
from typing import Protocol

from ingest.base import Processor, Store
from ingest.deadletters import DeadLetters
from ingest.decode import Decoder
from ingest.embedded import EmbeddedStore
from ingest.errors import StoreError
from ingest.handoff import Handoff
from ingest.influx import InfluxStore, InfluxWriter
from ingest.metrics import IngestMetrics
from ingest.pipeline import IngestPipeline
from ingest.spool import Spool
from ingest.subscriber import Subscriber
from ingest.topic import TopicTemplate
from meshwatch import http
from meshwatch.alerting import AlertsRuntime, alerting_of, build_alerts
from meshwatch.cluster import check_cluster, release_hook
from meshwatch.errors import ConfigError, MeshwatchError
from meshwatch.http import MetricsServer
from meshwatch.settings import Settings
from models.asset import AssetModel
from models.checkpoints import Checkpoints, CheckpointStore
from models.errors import CheckpointError, ProfileError
from models.feedback import FeedbackLog
from models.profiles import ProfileSelector
from models.registry import ModelRegistry
from models.scoring import ScoringProcessor

log = logging.getLogger("meshwatch")

#: Allocations (net of frees) between collections of the youngest generation (`tune_gc`).
GC_YOUNG_THRESHOLD = 10_000


class Source(Protocol):
    """Where the pipeline's batches come from: the broker, its partitions, or the reader."""

    connected: bool
    subscribed: bool

    @property
    def backpressure(self) -> bool:
        """True while a batch waits for the store, its acks held back."""

    def run(self, stop: threading.Event) -> None:
        """Take batches and commit them until `stop` is set or the source ends."""


@dataclass
class App:
    """The running pipeline's parts, built by `build` and stopped by `close`."""

    settings: Settings
    metrics: IngestMetrics
    store: Store
    deadletters: DeadLetters
    pipeline: IngestPipeline
    source: Source
    scoring: ScoringProcessor | None
    alerts: AlertsRuntime | None
    http: MetricsServer | None
    stop: threading.Event = field(default_factory=threading.Event)
    #: Teachings and resets for the models: written by commands, applied by scoring.
    feedback: FeedbackLog | None = None

    def run(self) -> None:
        """Run until `stop` is set, then shut down cleanly."""
        if self.http is not None:
            self.http.start()
            log.info(
                "metrics and health on http://%s:%d/metrics",
                self.settings.http.host,
                self.http.port,
            )
        if self.alerts is not None:
            self.alerts.start()
        try:
            run_source(self.source, self.stop)
        finally:
            self.close()

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy while connected and subscribed to the broker."""
        s = self.source
        ok = s.connected and s.subscribed
        return ok, {
            "mqtt_connected": s.connected,
            "subscribed": s.subscribed,
            "backpressure": s.backpressure,
        }

    def close(self) -> None:
        """Checkpoint the models, save the alerts, release the stores and the HTTP port."""
        if self.http is not None:
            self.http.close()
        try:
            if self.scoring is not None:
                self.scoring.close()
        finally:
            try:
                if self.alerts is not None:
                    self.alerts.close()
            finally:
                self.store.close()
                self.deadletters.close()
                if self.feedback is not None:  # the commands have stopped with the alerts
                    self.feedback.close()


def run_source(source: Source, stop: threading.Event) -> None:
    """Run `source` until `stop`; a batch the store refuses for good ends the run."""
    try:
        source.run(stop)
    except StoreError as exc:
        raise MeshwatchError(
            f"the store refused a batch for good, nothing of it acked: {exc}"
        ) from exc


def build(settings: Settings, link: Connection | None = None) -> App:
    """Build the pipeline from settings, in data-flow order: store, scoring, alerts, source.

    The source is the broker, or with `link` (a worker of ``--workers``) the reader.
    """
    data_dir = settings.data_dir
    check_cluster(settings)
    try:
        settings.state_dir().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"invalid setting data_dir (MESHWATCH_DATA_DIR): {exc}") from None
    metrics = IngestMetrics()
    try:
        store = _store(settings, metrics)
        deadletters = DeadLetters(data_dir / "deadletters.db", settings.ingest.deadletters_max)
    except StoreError as exc:
        raise ConfigError(f"invalid setting data_dir (MESHWATCH_DATA_DIR): {exc}") from None
    decoder = Decoder(
        TopicTemplate.parse(settings.mqtt.topic),
        max_payload=settings.ingest.max_payload,
        max_future_ns=int(settings.ingest.max_future * 1e9),
    )
    scoring = _scoring(settings) if settings.models.enabled else None
    feedback = scoring.feedback if scoring is not None else None
    processors: list[Processor] = [scoring] if scoring is not None else []
    try:
        alerts = (
            build_alerts(settings, metrics.registry, feedback) if settings.alerts.enabled else None
        )
    except ConfigError:
        if scoring is not None:
            scoring.close()
        if feedback is not None:
            feedback.close()
        store.close()
        deadletters.close()
        raise
    if alerts is not None:
        processors.append(alerts.processor)
    pipeline = IngestPipeline(decoder, store, deadletters, metrics, processors)
    source: Source
    if link is not None:
        source = Handoff(link, pipeline)
    elif settings.amqp.urls:
        from ingest.amqp import AmqpSource  # pika: only for an instance of a cluster

        source = AmqpSource(
            settings.amqp,
            settings.ingest,
            TopicTemplate.parse(settings.mqtt.topic),
            settings.mqtt.client_id,
            settings.mqtt.prefix,
            pipeline,
            on_release=release_hook(
                scoring.registry if scoring is not None else None,
                alerts.engine if alerts is not None else None,
                TopicTemplate.parse(settings.mqtt.topic),
            ),
        )
    else:
        source = Subscriber(settings.mqtt, settings.ingest, pipeline)
    app = App(
        settings,
        metrics,
        store,
        deadletters,
        pipeline,
        source,
        scoring,
        alerts,
        None,
        feedback=feedback,
    )
    return _with_http(app)


def check(settings: Settings, workers: int = 1) -> None:
    """Refuse what `build` would refuse in the configuration, opening nothing (`ConfigError`).

    ``meshwatch run --workers`` checks before it starts any worker, so a mistake is one line
    from the reader, not one from each worker: with `workers` above 1, their HTTP ports too
    (``http.port`` + 1 + k), which each worker would otherwise find taken on its own.
    """
    check_cluster(settings)
    http.check_free(settings.http, 1 if settings.amqp.urls else workers)
    if settings.models.enabled:
        _check_profiles(settings)
    if settings.alerts.enabled:
        alerting_of(settings)


def _check_profiles(settings: Settings) -> None:
    for profile in settings.models.profiles:
        try:
            AssetModel(profile)  # a profile that cannot build a model fails start-up
        except ProfileError as exc:
            raise ConfigError(f"invalid setting models.profiles: {exc}") from None


def _scoring(settings: Settings) -> ScoringProcessor:
    models = settings.models
    _check_profiles(settings)
    path = settings.state_dir() / "models.db"
    local = CheckpointStore(path)
    checkpoints: Checkpoints = local
    if models.checkpoints_url is not None:
        try:  # psycopg is the "cluster" extra, imported only when used
            from models.sharedcheckpoints import PostgresCheckpoints
        except ImportError as exc:
            local.close()
            raise ConfigError(
                "invalid setting models.checkpoints_url (MESHWATCH_MODELS__CHECKPOINTS_URL): "
                f"needs {exc.name}: pip install 'meshwatch[cluster]'"
            ) from None
        try:
            checkpoints = PostgresCheckpoints(models.checkpoints_url, local)
        except CheckpointError as exc:
            local.close()
            raise ConfigError(
                f"invalid setting models.checkpoints_url (MESHWATCH_MODELS__CHECKPOINTS_URL): {exc}"
            ) from None
    registry = ModelRegistry(
        ProfileSelector(models.profiles),
        checkpoints,
        max_models=models.max_models,
        checkpoint_interval=models.checkpoint_interval,
    )
    return ScoringProcessor(registry, FeedbackLog(path))


def _with_http(app: App) -> App:
    if app.settings.http.port == 0:
        return app
    try:
        app.http = http.serve(app.settings.http, app.metrics.registry, app.health)
    except ConfigError:
        app.close()
        raise
    return app


def _store(settings: Settings, metrics: IngestMetrics) -> Store:
    influx = settings.influx
    if influx.url is None:
        return EmbeddedStore(settings.data_dir / "meshwatch.db")
    writer = InfluxWriter(
        influx.url,
        influx.token.get_secret_value() if influx.token else "",
        influx.org,
        influx.bucket,
        influx.timeout,
    )
    spool = Spool(settings.state_dir() / "spool.db", settings.spool.max_bytes)
    return InfluxStore(spool, writer, metrics, batch_lines=influx.batch_size)


def tune_gc() -> None:
    """Set the garbage collector for a pipeline process, once `build` made its parts.

    The objects start-up made (imports, settings, the pipeline: ~130,000) live as long as
    the process, so they are frozen out of every collection; before, each full collection
    walked them all again. A batch keeps a few objects per reading alive until its commit, so
    the youngest generation is collected every `GC_YOUNG_THRESHOLD` allocations instead of
    CPython's 700, which kept walking batches that could not be freed yet. Together they
    took ~5 µs of CPU off each reading (issue 14).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def stop_on_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM or SIGINT: the process finishes the batch in hand, then ends."""

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: finishing the batch in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def run_worker(settings: Settings, link_fd: int) -> None:
    """Run as a worker of ``--workers`` on the socket `link_fd` until the reader closes it.

    The signals are the reader's to act on: it finishes its batch, then closes the link.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = build(settings, Connection(link_fd))
    tune_gc()
    app.run()


def run(settings: Settings) -> None:
    """Build and run the pipeline until SIGTERM or SIGINT."""
    app = build(settings)
    tune_gc()
    stop_on_signals(app.stop)
    log.info(
        "meshwatch run: %s on %s:%d -> %s",
        settings.mqtt.topic,
        settings.mqtt.host,
        settings.mqtt.port,
        settings.influx.url or settings.data_dir / "meshwatch.db",
    )
    app.run()
