"""The data dir's layout: files the workers share, and each worker's own.

One process keeps everything in the data dir itself. With ``meshwatch run --workers N``
the embedded store (``meshwatch.db``) and the dead letters (``deadletters.db``) stay there,
shared, and worker k keeps its models, alert state and spool in ``workers/<k>/``. Commands
that read a pipeline's state from disk (``status --local``, ``evaluate --feedback``) read
every one of them.

Examples
--------
>>> from pathlib import Path
>>> state_dir(Path("/srv/mw"), None), state_dir(Path("/srv/mw"), 1)
(PosixPath('/srv/mw'), PosixPath('/srv/mw/workers/1'))
"""

from __future__ import annotations

from pathlib import Path

WORKERS = "workers"


def state_dir(data_dir: Path, worker: int | None) -> Path:
    """Where a process keeps its own state: the data dir, or worker `worker`'s directory."""
    return data_dir if worker is None else data_dir / WORKERS / str(worker)


def state_files(data_dir: Path, name: str) -> list[Path]:
    """Every existing state file `name` (``alerts.db``) of the data dir and of its workers."""
    found = [data_dir / name] if (data_dir / name).exists() else []
    workers = data_dir / WORKERS
    if workers.is_dir():
        found += sorted(
            (d / name for d in workers.iterdir() if (d / name).exists()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        )
    return found
