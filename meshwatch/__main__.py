"""``python -m meshwatch``: the same as the ``meshwatch`` console script."""

from __future__ import annotations

from meshwatch.cli import main

main()
