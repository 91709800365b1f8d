"""The settings every command loads, from ``--config`` and the environment.

``--config`` is kept on the root context; logging is set up as the settings say.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from meshwatch.clientsettings import ClientSettings
    from meshwatch.settings import Settings


#: ``--config FILE``: on the root group, and on commands that take it after their name.
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML configuration file (environment variables override it).",
)


def settings_of(ctx: click.Context) -> Settings:
    """The settings for a command (raises `ConfigError`: one line, exit 2)."""
    # Imported here: pydantic-settings and every package's settings model cost a command's
    # ``--help`` (which loads no settings) most of its start-up time.
    from meshwatch.settings import load_settings

    settings = load_settings(ctx.find_root().obj)
    _log_as(settings.log.level)
    return settings


def client_settings_of(ctx: click.Context) -> ClientSettings:
    """The broker, data dir and logging only: for commands that talk to a running pipeline.

    Sections of the file such a command does not use are not checked (the pipeline did).
    """
    from meshwatch.clientsettings import ClientSettings, load

    settings = load(ClientSettings, ctx.find_root().obj)
    _log_as(settings.log.level)
    return settings


def _log_as(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
