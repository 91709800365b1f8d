"""What every measurement shares: its result (`Drain`), its setting (`Bench`), its contract."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console

from meshwatch.localservers import Mosquitto

from .workloads import Workload

#: The subscriber name of ``meshwatch run``, as the tables print it and the goals look it up.
MESHWATCH = "meshwatch run"


@dataclass
class PublishResult:
    """How publishing one workload's backlog went.

    Attributes
    ----------
    messages : int
        Messages published, each PUBACKed by the broker.
    seconds : float
        From the first ``publish()`` to the last PUBACK.
    """

    messages: int
    seconds: float


@dataclass
class Drain:
    """One subscriber draining one workload's backlog.

    Attributes
    ----------
    workload, subscriber : str
        What was measured.
    messages, readings : int
        Backlog size.
    publish : PublishResult
        How the backlog was published.
    total_s : float or None
        From starting the subscriber process to the last message counted / row stored.
    steady_s : float or None
        From the first message counted / first rows visible to the last (no start-up).
    steady_readings : int
        Readings handled within ``steady_s``.
    cpu_s : float or None
        CPU seconds of the subscriber process until the backlog was drained.
    broker_cpu_s : float or None
        CPU seconds of mosquitto during the same time.
    status : str
        ``"ok"`` or what went wrong (crash, hang, wrong count).
    checks : list of str
        Correctness findings (meshwatch only); empty when all passed.
    notes : list of str
        Anything else worth printing.
    """

    workload: str
    subscriber: str
    messages: int
    readings: int
    publish: PublishResult
    total_s: float | None = None
    steady_s: float | None = None
    steady_readings: int = 0
    cpu_s: float | None = None
    broker_cpu_s: float | None = None
    status: str = "ok"
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, workload: Workload, subscriber: str, publish: PublishResult) -> Drain:
        """Start the result of ``subscriber`` draining ``workload``, published as ``publish``."""
        return cls(workload.name, subscriber, len(workload.messages), workload.readings, publish)

    @property
    def total_rate(self) -> float | None:
        """Readings per second from process start."""
        if self.status != "ok" or not self.total_s:
            return None
        return self.readings / self.total_s

    @property
    def steady_rate(self) -> float | None:
        """Readings per second from the first to the last message or row."""
        if self.status != "ok" or not self.steady_s:
            return None
        return self.steady_readings / self.steady_s


class Subscriber(Protocol):
    """One kind of subscriber under test."""

    def drain(self, workload: Workload) -> Drain:
        """Publish ``workload`` while offline, then time draining it and check the outcome."""


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU (user + system) seconds a live process has used so far, from ``/proc``.

    Its live descendants count too: the workers of ``meshwatch run --workers``.

    Parameters
    ----------
    pid : int
        The process.

    Returns
    -------
    float or None
        Seconds, or None if the process is gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields after "(comm) ": utime and stime are fields 14 and 15 of proc(5), in clock ticks
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks
    return own + sum(cpu_seconds(child) or 0.0 for child in _children(pid))


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (those its threads started), from ``/proc``."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def memory_mib(pid: int) -> tuple[float, float]:
    """Return a live process's resident set and its peak (``VmRSS``, ``VmHWM``) in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


def _find_pid(needle: str) -> int | None:
    """PID of the process whose command line contains ``needle`` (our mosquitto)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            return int(entry.name)
    return None


class Bench:
    """The broker, work dir and console that every measurement of one run shares.

    Parameters
    ----------
    broker : Mosquitto
        The running broker.
    workdir : Path
        Where data dirs and logs go.
    console : Console
        Progress output.
    profile_dir : Path, optional
        If set, ``py-spy record`` samples meshwatch during each drain into this directory.
    """

    def __init__(
        self, broker: Mosquitto, workdir: Path, console: Console, profile_dir: Path | None
    ) -> None:
        self.broker = broker
        self.host = broker.host
        self.port = broker.port
        self.workdir = workdir
        self.console = console
        self.profile_dir = profile_dir
        self._broker_pid = _find_pid(str(broker.conf_path))

    def broker_cpu(self) -> float | None:
        """CPU seconds mosquitto has used so far, or None if its process was not found."""
        return None if self._broker_pid is None else cpu_seconds(self._broker_pid)


def cpu_delta(before: float | None, after: float | None) -> float | None:
    """Return ``after - before``, or None if either reading is missing."""
    return None if before is None or after is None else after - before
