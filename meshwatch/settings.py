"""Settings: defaults < YAML file (``--config``) < environment < explicit arguments.

Environment variables are ``MESHWATCH_<SECTION>__<KEY>`` (``MESHWATCH_MQTT__HOST``), and
``MESHWATCH_DATA_DIR`` for the top-level data directory. The YAML file has the same shape,
one mapping per section. Unknown keys are errors, so a typo cannot pass silently.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from alerts.settings import AlertsSettings
from ingest.settings import InfluxSettings, IngestSettings, MqttSettings, SpoolSettings
from meshwatch.errors import ConfigError
from models.settings import ModelsSettings

ENV_PREFIX = "MESHWATCH_"
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "meshwatch_config_file", default=None
)


class HttpSettings(BaseModel):
    """The HTTP endpoint serving ``/metrics`` (Prometheus) and ``/healthz``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "0.0.0.0"
    # 9464: the port Prometheus exporters of OpenTelemetry use; 0 turns the endpoint off.
    port: int = Field(9464, ge=0, le=65535)


class LogSettings(BaseModel):
    """Logging of the long-running commands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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


class Settings(BaseSettings):
    """All of meshwatch's configuration, one nested model per section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path(".meshwatch")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    spool: SpoolSettings = SpoolSettings()
    ingest: IngestSettings = IngestSettings()
    models: ModelsSettings = ModelsSettings()
    alerts: AlertsSettings = AlertsSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    web: WebSettings = WebSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments, then the environment, then the YAML file, then defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


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
    if config_file is not None:
        _check_yaml(config_file)
    token = _config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    finally:
        _config_file.reset(token)


def describe(error: ValidationError) -> str:
    """One line for the first problem: the setting, its env variable, what is wrong."""
    first = error.errors()[0]
    path = [str(part) for part in first["loc"]]
    message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    suffix = f" (and {more} more)" if more else ""
    if first["type"] == "value_error" and len(path) == 1 and path[0] in _sections():
        # A rule across keys of a section: the message names the keys itself.
        return f"invalid {path[0]} settings: {message}{suffix}"
    key = ".".join(path) or "settings"
    env = ENV_PREFIX + "__".join(part.upper() for part in path)
    if first["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling)"
    elif first["type"] not in ("value_error", "missing") and not _secret(path):
        message += f", got {first['input']!r}"
    return f"invalid setting {key} ({env}): {message}{suffix}"


def _sections() -> set[str]:
    return {
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def _secret(path: list[str]) -> bool:
    return path[-1] in ("password", "token")


def _check_yaml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}") from None
    if document is not None and not isinstance(document, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections (mqtt:, influx:, ...)")
