"""Errors raised by models.

Hierarchy::

    ModelError
    ├── ProfileError      a detector profile that cannot be built (names the profile)
    ├── DatasetError      a labelled file that cannot be read (names the file and line)
    └── CheckpointError   the shared checkpoint database refused or cannot be reached
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error raised by the models package."""


class ProfileError(ModelError, ValueError):
    """A profile with an unknown detector, bad parameters or an invalid pattern."""

    def __init__(self, profile: str, problem: str) -> None:
        super().__init__(f"profile {profile!r}: {problem}")
        self.profile = profile
        self.problem = problem


class DatasetError(ModelError):
    """A labelled data file that cannot be evaluated."""

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


class CheckpointError(ModelError):
    """The checkpoint database (``models.checkpoints_url``) refused a save or a connection."""
