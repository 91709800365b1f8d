"""Names of tables a setting or a caller prefixes, checked before they go into SQL text.

Table names cannot be bound as query parameters, so the stores that share a database
(PostgreSQL for a cluster's checkpoints and alert state) build them from a prefix, which must
be a plain SQL identifier: a letter, then letters, digits and underscores.

Examples
--------
>>> table_name("meshwatch", "models")
'meshwatch_models'
>>> table_name("mesh watch", "models")
Traceback (most recent call last):
...
ValueError: table prefix 'mesh watch' is not a plain SQL identifier
"""

from __future__ import annotations

__all__ = ["table_name"]


def table_name(prefix: str, name: str) -> str:
    """``<prefix>_<name>``; `ValueError` when the prefix is not a plain SQL identifier."""
    if not prefix or not prefix[0].isalpha() or not prefix.replace("_", "").isalnum():
        raise ValueError(f"table prefix {prefix!r} is not a plain SQL identifier")
    return f"{prefix}_{name}"
