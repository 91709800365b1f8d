"""Errors of the local servers.

Hierarchy::

    RuntimeError
    └── ServerError             a server could not be found, started or used
        └── MissingBinaryError  the executable a server or helper needs is not installed
"""

from __future__ import annotations


class ServerError(RuntimeError):
    """A local server could not be found, started or used; the message says what to do."""


class MissingBinaryError(ServerError):
    """The executable a server or helper needs is not installed."""
