"""Label matchers, written as Alertmanager writes them: ``site=plant-a``, ``asset=~cnc-.*``.

Routes, silences and rule scopes select alerts and assets with them. A regular expression
must match the whole value (it is anchored, as in Alertmanager), and a label an alert does
not have reads as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from alerts.base import Labels
from alerts.errors import RulesError

#: What silences and routes may match on: the labels every alert carries.
LABELS = ("site", "asset", "kind", "rule", "severity")
Op = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(r'^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S.*?|))\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label.

    Examples
    --------
    >>> m = Matcher.parse('asset=~"cnc-.*"')
    >>> m.matches({"asset": "cnc-7"}), m.matches({"asset": "printer-1"})
    (True, False)
    >>> str(m)
    'asset=~"cnc-.*"'
    >>> Matcher.parse("colour=red")
    Traceback (most recent call last):
    ...
    alerts.errors.RulesError: matcher 'colour=red': unknown label 'colour' \
(labels are site, asset, kind, rule, severity)
    """

    label: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise RulesError(
                f"matcher '{self.label}{self.op}{self.value}': unknown label "
                f"'{self.label}' (labels are {', '.join(LABELS)})"
            )
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_regex", re.compile(self.value))
            except re.error as exc:
                raise RulesError(
                    f"matcher '{self.label}{self.op}{self.value}': bad regular expression: {exc}"
                ) from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Read ``label op value``; the value may be double-quoted."""
        found = _SYNTAX.match(text)
        if found is None:
            raise RulesError(
                f"matcher {text!r}: expected label=value, label!=value, label=~regex "
                f"or label!~regex"
            )
        label, op, quoted, bare = found.groups()
        value = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        if label not in LABELS:
            raise RulesError(
                f"matcher {text!r}: unknown label {label!r} (labels are {', '.join(LABELS)})"
            )
        return cls(label, op, value)  # type: ignore[arg-type]  # _SYNTAX admits only the four ops

    def matches(self, labels: Labels) -> bool:
        """Whether `labels` satisfy this condition."""
        value = labels.get(self.label, "")
        if self._regex is not None:
            return (self._regex.fullmatch(value) is not None) == (self.op == "=~")
        return (value == self.value) == (self.op == "=")

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{quoted}"'


def parse_all(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Parse a list of matchers (all must hold)."""
    return tuple(Matcher.parse(t) for t in texts)


def match_all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    """True when every matcher holds (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
