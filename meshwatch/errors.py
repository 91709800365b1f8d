"""Errors of the wiring package.

Hierarchy::

    MeshwatchError
    └── ConfigError   a setting or config file that stops start-up (one line, names the key)
"""

from __future__ import annotations


class MeshwatchError(Exception):
    """Base of the wiring package's errors."""


class ConfigError(MeshwatchError):
    """A bad setting: the message names the setting, its env variable and what is wrong."""
