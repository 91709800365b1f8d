"""What every benchmark's report is made of: a wide console, tables, goals and a JSON file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from .base import Drain

#: A column of a table: its heading and how its cells are justified.
Column = tuple[str, Literal["left", "right"]]


def wide_console() -> Console:
    """A console for the tables: 160 columns when piped (`make bench`), not squeezed to 80."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def add_columns(table: Table, columns: Iterable[Column]) -> None:
    """Add each ``(heading, justify)`` column to ``table``, in order."""
    for name, justify in columns:
        table.add_column(name, justify=justify)


def drain_status(d: Drain) -> str:
    """How a meshwatch drain ended: its failure, its failed checks, or exact."""
    if d.status != "ok":
        return f"[red]{d.status}[/]"
    return "[green]exact[/]" if not d.checks else "[red]" + "; ".join(d.checks) + "[/]"


def fmt(value: float | None, spec: str) -> str:
    """Format ``value`` with ``spec``, or a dash if there is none."""
    return "—" if value is None else format(value, spec)


def print_goals(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    """A benchmark's goals as a table: goal, measured (by its ``spec``), target, PASS/MISS.

    Each row's ``spec`` (a format spec for ``measured``) is taken out of it, so the rows
    can go on to the JSON report.
    """
    table = Table(title=title)
    for name in ("goal", "measured", "target", "result"):
        table.add_column(name, justify="right" if name == "measured" else "left")
    for row in rows:
        table.add_row(
            row["goal"],
            format(row["measured"], row.pop("spec")),
            row["target"],
            "[green]PASS[/]" if row["passed"] else "[red]MISS[/]",
        )
    console.print(table)


def save_json(path: Path, data: object) -> None:
    """Write a benchmark's results as indented JSON to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
