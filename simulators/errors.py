"""Errors of the simulators.

Hierarchy::

    SimulatorError        anything the simulators refuse or fail at (one line, actionable)
    ├── FleetError        a bad fleet file or fleet: names the file, the line and key, the problem
    ├── FaultOptionError  a bad ``--fault SITE/ASSET:TYPE@ONSET[+DEVELOP][*SEVERITY]`` option
    └── BrokerError       the broker could not be reached, refused us, or stopped acknowledging
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of the simulators' errors; the message is one line saying what to fix."""


class FleetError(SimulatorError):
    """A fleet file or fleet that cannot be simulated.

    Parameters
    ----------
    message
        One line: ``"<file>: line <n> (<key>): <problem>"`` when it comes from a file.
    path
        The fleet file, when there is one.
    line
        The 1-based line of the problem in that file, when known.
    key
        The dotted key of the problem (``faults[0].onset``), when known.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key


class FaultOptionError(SimulatorError):
    """A ``--fault`` option that does not parse; ``option`` is the offending text."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


class BrokerError(SimulatorError):
    """The broker could not be reached, refused the connection or stopped acknowledging."""
