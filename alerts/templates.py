"""Message templates of rules: ``"{asset} at {site}: {metric} is {value:.1f}"``.

A template is checked when the rules load, so a typo in a field name fails start-up instead
of the first alert.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

#: Fields a template may use, with sample values that check a template's format specs.
FIELDS: Mapping[str, object] = {
    "site": "plant-a",
    "asset": "cnc-1",
    "kind": "cnc-mill",
    "rule": "rule",
    "severity": "warning",
    "value": 1.5,
    "top_metric": "vibration_rms",
    "duration": "5m",
    "metric": "spindle_temp_c",
    "op": ">",
    "threshold": 90.0,
}


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A message with ``{field}`` placeholders (Python format syntax, format specs allowed).

    Examples
    --------
    >>> t = MessageTemplate("{asset} at {site}: {value:.1f}")
    >>> t.render({**FIELDS, "value": 93.26})
    'cnc-1 at plant-a: 93.3'
    >>> t.render({"asset": "cnc-1", "value": None})
    'cnc-1 at -: -'
    >>> MessageTemplate("{assett} is hot")
    Traceback (most recent call last):
    ...
    ValueError: unknown field {assett} (fields are site, asset, kind, rule, severity, value, \
top_metric, duration, metric, op, threshold)
    """

    text: str

    def __post_init__(self) -> None:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(self.text) if name]
        except ValueError as exc:
            raise ValueError(f"bad template: {exc}") from None
        for name in names:
            if name not in FIELDS:
                raise ValueError(f"unknown field {{{name}}} (fields are {', '.join(FIELDS)})")
        try:
            self.text.format_map(FIELDS)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad format in template: {exc}") from None

    def render(self, values: Mapping[str, object]) -> str:
        """The message for these values; a missing value shows as ``-``."""
        return _FORMATTER.vformat(self.text, (), values)


class _LenientFormatter(string.Formatter):
    """Never fails on values: a None or a string under a numeric format spec prints as is."""

    def get_value(self, key: int | str, args: object, kwargs: Mapping[str, object]) -> object:
        value = kwargs.get(str(key))
        return "-" if value is None else value

    def format_field(self, value: object, format_spec: str) -> str:
        try:
            return format(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _LenientFormatter()


def _works(message: str) -> str:
    MessageTemplate(message)
    return message


#: A message template field of a config: checked when the config loads.
Template = Annotated[str, AfterValidator(_works)]
