"""Topic templates: where a telemetry topic carries its site and asset.

A template such as ``plant/{site}/{asset}/telemetry`` names the two IDs as whole topic levels.
The subscription replaces them with ``+``; an incoming topic is matched level by level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.errors import Reason, RejectedMessage, TopicTemplateError

#: IDs (site, asset, kind, metric names) as docs/design.md §2 defines them.
ID_RULE = "[A-Za-z0-9_.-]{1,64}"
ID_PATTERN = re.compile(ID_RULE)
_PLACEHOLDERS = ("{site}", "{asset}")


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A parsed topic template.

    Examples
    --------
    >>> t = TopicTemplate.parse("plant/{site}/{asset}/telemetry")
    >>> t.subscription
    'plant/+/+/telemetry'
    >>> t.match("plant/berlin-1/cnc-07/telemetry")
    ('berlin-1', 'cnc-07')
    >>> t.match("plant/berlin-1/cnc 07/telemetry")
    Traceback (most recent call last):
    ...
    ingest.errors.RejectedMessage: bad_id: asset 'cnc 07' must match [A-Za-z0-9_.-]{1,64}
    """

    template: str
    levels: tuple[str, ...]
    site_level: int
    asset_level: int

    @classmethod
    def parse(cls, template: str) -> TopicTemplate:
        """Parse and check a template; raise `TopicTemplateError` naming what to fix."""
        levels = tuple(template.split("/"))
        for placeholder in _PLACEHOLDERS:
            if levels.count(placeholder) != 1:
                raise TopicTemplateError(
                    f"topic template {template!r} must contain {placeholder} exactly once, "
                    "as a whole level (e.g. plant/{site}/{asset}/telemetry)"
                )
        for level in levels:
            if level in _PLACEHOLDERS:
                continue
            if "{" in level or "}" in level:
                raise TopicTemplateError(
                    f"topic template {template!r}: level {level!r} has a placeholder that is "
                    "not a whole level; only {site} and {asset} are allowed, each alone"
                )
            if "+" in level or "#" in level:
                raise TopicTemplateError(
                    f"topic template {template!r}: wildcards are not allowed, "
                    "the subscription derives them from {site} and {asset}"
                )
            if level.startswith("$") and level is levels[0]:
                raise TopicTemplateError(
                    f"topic template {template!r}: topics starting with '$' are the broker's"
                )
        return cls(template, levels, levels.index("{site}"), levels.index("{asset}"))

    @property
    def subscription(self) -> str:
        """The topic filter to subscribe to: placeholders become ``+``."""
        return "/".join("+" if level in _PLACEHOLDERS else level for level in self.levels)

    def covers(self, topic: str) -> bool:
        """Whether the subscription matches `topic`, by MQTT's rules (a ``+`` is one level).

        As paho's ``topic_matches_sub``, without importing paho's client for it: a ``+`` on
        the first level matches no topic starting with ``$`` (the broker's own).

        Examples
        --------
        >>> t = TopicTemplate.parse("{site}/{asset}/telemetry")
        >>> t.covers("mw/status/telemetry"), t.covers("mw/telemetry"), t.covers("$SYS/x/telemetry")
        (True, False, False)
        """
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return False
        if parts[0].startswith("$") and self.levels[0] in _PLACEHOLDERS:
            return False
        return all(
            level in _PLACEHOLDERS or part == level
            for part, level in zip(parts, self.levels, strict=True)
        )

    def match(self, topic: str) -> tuple[str, str]:
        """Return (site, asset) of a topic; raise `RejectedMessage` when it does not fit."""
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            raise RejectedMessage(
                Reason.BAD_TOPIC, f"topic {topic!r} does not fit template {self.template!r}"
            )
        for i, level in enumerate(self.levels):
            if i != self.site_level and i != self.asset_level and parts[i] != level:
                raise RejectedMessage(
                    Reason.BAD_TOPIC, f"topic {topic!r} does not fit template {self.template!r}"
                )
        site, asset = parts[self.site_level], parts[self.asset_level]
        for name, value in (("site", site), ("asset", asset)):
            if not ID_PATTERN.fullmatch(value):
                raise RejectedMessage(Reason.BAD_ID, f"{name} {value!r} must match {ID_RULE}")
        return site, asset

    def topic(self, site: str, asset: str) -> str:
        """Build the concrete topic of one asset (what a sensor publishes to)."""
        return self.template.replace("{site}", site).replace("{asset}", asset)
