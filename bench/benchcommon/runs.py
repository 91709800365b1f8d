"""What every benchmark of meshwatch needs around a run: a work dir and a note of the machine."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console


@contextmanager
def work_dir(path: Path | None, keep: bool, prefix: str) -> Iterator[Path]:
    """`path` (created), or a temporary dir removed afterwards unless `keep`."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def environment(versions: Mapping[str, str]) -> dict[str, str]:
    """Where and on what the run happens: date, machine, load, Python, `versions`, commit."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        **versions,
        "commit": commit,
    }


def logged_environment(console: Console, versions: Mapping[str, str]) -> dict[str, str]:
    """`environment` with `versions`, logged on one line before the run starts."""
    env = environment(versions)
    console.log(" · ".join(f"{k} {v}" for k, v in env.items()))
    return env


def add_run_options(parser: argparse.ArgumentParser, workdir_help: str) -> None:
    """The options every benchmark takes: ``--workdir``, ``--keep`` and ``--json``."""
    parser.add_argument("--workdir", type=Path, help=workdir_help)
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")


def require_positive(
    parser: argparse.ArgumentParser, args: argparse.Namespace, names: Iterable[str]
) -> None:
    """Stop with argparse's usage error when any of these counts is below 1."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
