"""Where a validation error is in a YAML file: its key path and line, for one-line messages.

Settings and fleet files are validated by pydantic, whose error location (``loc``) is a path
of keys and list indexes; these turn it into ``sites[0].assets[1].kind`` and the line of that
key in the document, so a message names the file, the line and the key (Telegraf style).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

__all__ = ["PlacedError", "key_path", "line_of"]


class PlacedError(ValueError):
    """A problem a validator finds across keys, with the key path below it that it is about.

    Raised from a pydantic validator, it travels in the error's ``ctx``; a one-line message can
    then name that key and its line rather than the whole section.
    """

    def __init__(self, message: str, loc: Sequence[int | str]) -> None:
        super().__init__(message)
        self.loc = list(loc)


def key_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as ``rules[1].name``; empty for the top level.

    Examples
    --------
    >>> key_path(["sites", 0, "assets", 1, "kind"]), key_path([])
    ('sites[0].assets[1].kind', '')
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(
    root: yaml.Node | None,
    loc: Sequence[int | str],
    keys: Mapping[str, str] | None = None,
    *,
    whole: bool = False,
) -> int | None:
    r"""The 1-based line of the deepest node on ``loc`` that the document has (None: no document).

    ``keys`` maps field names to the YAML keys they are written as (``for_`` to ``for``);
    with ``whole``, None unless the document has all of ``loc`` (the value came from there).

    Examples
    --------
    >>> root = yaml.compose("sites:\n  - name: a\n    assets: []\n")
    >>> line_of(root, ["sites", 0, "assets"]), line_of(root, ["sites", 3]), line_of(None, [])
    (3, 2, None)
    >>> line_of(root, ["sites", 3], whole=True) is None
    True
    """
    found = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(found, yaml.MappingNode):
            key = keys.get(str(part), part) if keys else part
            child = next((v for k, v in found.value if k.value == key), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int):
            child = found.value[part] if part < len(found.value) else None
        if child is None:
            if whole:
                return None
            break
        found = child
    return found.start_mark.line + 1 if found is not None else None
