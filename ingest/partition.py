"""Which worker owns an asset: a stable hash of its site and asset, so it stays on one worker.

With ``meshwatch run --workers N`` the reader hands each message to the worker that owns its
asset (`ingest.fanout`), so an asset's model, alert state and deadman live in exactly one
process. The hash is CRC-32 of ``site/asset``: stable across runs, Python versions and
machines (unlike ``hash()``), and about a tenth of a microsecond a message.

Examples
--------
>>> owner("plant-a", "cnc-1", 2), topic_owner("not/a/telemetry/topic/at/all", 2)
(1, 1)
>>> Partition.parse("1/2")
Partition(index=1, count=2)
>>> Partition.parse("2/2")
Traceback (most recent call last):
...
ValueError: partition '2/2' is not k/N with 0 <= k < N (e.g. 0/4)
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_FORM = re.compile(r"^(\d+)/(\d+)$")


def owner(site: str, asset: str, count: int) -> int:
    """The index (0 to `count` - 1) of the worker that owns the asset."""
    return zlib.crc32(f"{site}/{asset}".encode()) % count


def topic_owner(topic: str, count: int) -> int:
    """The worker that keeps the dead letter of a topic that names no asset."""
    return zlib.crc32(topic.encode(errors="surrogateescape")) % count


@dataclass(frozen=True, slots=True)
class Partition:
    """Worker `index` of `count`: which of the workers' state directories is this process's."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``k/N``, as the reader hands it to worker k (`ValueError` otherwise)."""
        match = _FORM.match(text.strip())
        if match is None or not int(match[1]) < int(match[2]):
            raise ValueError(f"partition {text!r} is not k/N with 0 <= k < N (e.g. 0/4)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
