"""The settings every command loads, from ``--config`` and the environment.

``--config`` is kept on the root context; logging is set up as the settings say.
"""

from __future__ import annotations

import logging
import sys

import click

from meshwatch.settings import Settings, load_settings


def settings_of(ctx: click.Context) -> Settings:
    """The settings for a command (raises `ConfigError`: one line, exit 2)."""
    settings = load_settings(ctx.find_root().obj)
    logging.basicConfig(
        level=settings.log.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return settings
