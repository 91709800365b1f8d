"""Settings: defaults < YAML file (``--config``) < environment < explicit arguments.

Environment variables are ``MESHWATCH_<SECTION>__<KEY>`` (``MESHWATCH_MQTT__HOST``), and
``MESHWATCH_DATA_DIR`` for the top-level data directory. The YAML file has the same shape,
one mapping per section. Unknown keys are errors, so a typo cannot pass silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from alerts.settings import AlertsSettings
from ingest.settings import (
    AmqpSettings,
    InfluxSettings,
    IngestSettings,
    MqttSettings,
    SpoolSettings,
)
from meshwatch.clientsettings import FileSettings, LogSettings, load
from meshwatch.datadir import state_dir
from models.settings import ModelsSettings


class HttpSettings(BaseModel):
    """The HTTP endpoint serving ``/metrics`` (Prometheus) and ``/healthz``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "0.0.0.0"
    # 9464: the port Prometheus exporters of OpenTelemetry use; 0 turns the endpoint off.
    port: int = Field(9464, ge=0, le=65535)


class WebSettings(BaseModel):
    """The web console (``meshwatch web``, docs/design.md §13): where it listens, who may log in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    # 8080: the usual unprivileged HTTP port; the pipeline's /metrics is on 9464.
    port: int = Field(8080, ge=0, le=65535)
    #: YAML list of ``{name, hash, role}``; without one the console starts only read-only.
    users_file: Path | None = None
    #: The session cookie's signing key; None: ``<data_dir>/web-secret``, made when missing.
    secret_file: Path | None = None


class Settings(FileSettings):
    """All of meshwatch's configuration, one nested model per section."""

    model_config = SettingsConfigDict(extra="forbid")

    data_dir: Path = Path(".meshwatch")
    mqtt: MqttSettings = MqttSettings()
    amqp: AmqpSettings = AmqpSettings()
    influx: InfluxSettings = InfluxSettings()
    spool: SpoolSettings = SpoolSettings()
    ingest: IngestSettings = IngestSettings()
    models: ModelsSettings = ModelsSettings()
    alerts: AlertsSettings = AlertsSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    web: WebSettings = WebSettings()
    #: Worker processes of ``meshwatch run`` (``--workers``); 0: one per core available.
    workers: int = Field(0, ge=0, le=256)

    def state_dir(self) -> Path:
        """Where this process keeps its own state (alerts.db, models.db, spool.db).

        The data dir itself, or ``<data_dir>/workers/<k>`` for worker k: the embedded store
        and the dead letters are shared by the workers, the models and alert state are not.
        An instance of a cluster (``amqp.urls``) keeps its own in
        ``<data_dir>/instances/<mqtt.client_id>``, so instances may share a data dir.
        """
        if self.amqp.urls:
            return self.data_dir / "instances" / self.mqtt.client_id
        partition = self.ingest.owned()
        return state_dir(self.data_dir, None if partition is None else partition.index)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings, or raise `ConfigError` with one line naming the bad setting.

    Examples
    --------
    >>> load_settings(mqtt={"port": 1884}).mqtt.port
    1884
    >>> load_settings(mqtt={"port": 0})
    Traceback (most recent call last):
    ...
    meshwatch.errors.ConfigError: invalid setting mqtt.port (MESHWATCH_MQTT__PORT): \
Input should be greater than or equal to 1, got 0
    """
    return load(Settings, config_file, **overrides)
