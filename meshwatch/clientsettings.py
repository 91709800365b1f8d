"""The settings file and environment, read for any part of the settings.

`Settings` (meshwatch.settings) holds every section; `ClientSettings` holds only what a
command talking to a running pipeline needs (the broker, the data dir, logging), so ``status``,
``ack``, ``silence`` or ``deadletters`` do not build the models, alerts and ingest sections
(the pipeline validated those). Both read the same sources in the same order.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from ingest.settings import MqttSettings
from meshwatch.errors import ConfigError

ENV_PREFIX = "MESHWATCH_"
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "meshwatch_config_file", default=None
)


class LogSettings(BaseModel):
    """Logging of the long-running commands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class FileSettings(BaseSettings):
    """Settings read from explicit arguments, then the environment, then the YAML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True)

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


class ClientSettings(FileSettings):
    """The broker, the data dir and logging: what a command needs to talk to a pipeline.

    Sections it does not hold are ignored here, not checked.
    """

    model_config = SettingsConfigDict(extra="ignore")

    data_dir: Path = Path(".meshwatch")
    mqtt: MqttSettings = MqttSettings()
    log: LogSettings = LogSettings()


Loaded = TypeVar("Loaded", bound=FileSettings)


def load(cls: type[Loaded], config_file: Path | None = None, **overrides: Any) -> Loaded:
    """Load ``cls`` from the file, the environment and ``overrides``, or raise `ConfigError`."""
    if config_file is not None:
        _check_yaml(config_file)
    token = _config_file.set(config_file)
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc, cls, config_file)) from None
    finally:
        _config_file.reset(token)


def describe(
    error: ValidationError, cls: type[BaseSettings], config_file: Path | None = None
) -> str:
    """One line for the first problem: the setting, its env variable, what is wrong.

    When the value came from the config file, the line starts with the file and the line.
    """
    from common.yamlpath import PlacedError

    first = error.errors()[0]
    loc: list[int | str] = [p for p in first["loc"] if not str(p).startswith("function-")]
    placed = first.get("ctx", {}).get("error")
    if isinstance(placed, PlacedError):
        loc += placed.loc  # a rule across keys, about one key below the section
    path = [str(part) for part in loc]
    message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    suffix = f" (and {more} more)" if more else ""
    where = _where(config_file, loc)
    if first["type"] == "value_error" and len(path) == 1 and path[0] in _sections(cls):
        # A rule across keys of a section: the message names the keys itself.
        return f"{where}invalid {path[0]} settings: {message}{suffix}"
    key = ".".join(path) or "settings"
    env = ENV_PREFIX + "__".join(part.upper() for part in path)
    if first["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling)"
    elif first["type"] not in ("value_error", "missing") and not _secret(path):
        message += f", got {first['input']!r}"
    return f"{where}invalid setting {key} ({env}): {message}{suffix}"


def _where(config_file: Path | None, loc: list[int | str]) -> str:
    """``FILE: line N: `` when the config file holds the setting at `loc`, else nothing."""
    if config_file is None:
        return ""
    import yaml

    from common.yamlpath import line_of

    try:
        root = yaml.compose(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return ""
    line = line_of(root, loc, whole=True)
    return "" if line is None else f"{config_file}: line {line}: "


def _sections(cls: type[BaseSettings]) -> set[str]:
    return {
        name
        for name, field in cls.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def _secret(path: list[str]) -> bool:
    return path[-1] in ("password", "token")


def _check_yaml(path: Path) -> None:
    # Imported here, as in _where: without a config file, a command needs no YAML parser.
    import yaml

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
