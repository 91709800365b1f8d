"""Which instance consumes which partition of a clustered broker, and who the instances are.

The broker (``ingest.amqp``) spreads the telemetry over a fixed number of partition queues by
a consistent hash of the topic, so an asset always lands in the same partition. Instances
split the partitions among themselves by rendezvous hashing (highest random weight): each
partition goes to the member whose hash of (member, partition) is highest. Every instance
computes the same answer from the same member list, without talking to the others, and when a
member joins or leaves only the partitions it gains or held move (about 1/N of them).

Members are known from their heartbeats on the broker (`Members`): an instance that has not
been heard from for ``timeout`` seconds is gone. Agreement is only eventual (two instances may
briefly see different lists), which is safe because the broker lets one consumer of a
partition queue at a time receive (single active consumer): a disagreement delays a handover,
it never makes two owners.

Examples
--------
>>> plan = assign(8, ["meshwatch-a", "meshwatch-b"])
>>> sorted(plan["meshwatch-a"]), sorted(plan["meshwatch-b"])
([0, 2, 6, 7], [1, 3, 4, 5])
>>> assign(8, ["meshwatch-a"])["meshwatch-a"] == frozenset(range(8))
True
>>> moved(assign(8, ["a", "b"]), assign(8, ["a", "b", "c"]))
frozenset({1, 2, 5})
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Plan = Mapping[str, frozenset[int]]


def _weight(member: str, partition: int) -> int:
    # blake2b: stable across processes, machines and Python versions (unlike hash()); 8 bytes
    # are ample to order a few hundred members.
    digest = hashlib.blake2b(f"{member}\x00{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(partition: int, members: Iterable[str]) -> str:
    """The member that consumes `partition` (`ValueError` when there are no members)."""
    candidates = sorted(set(members))
    if not candidates:
        raise ValueError("no members to own partitions")
    return max(candidates, key=lambda member: (_weight(member, partition), member))


def assign(partitions: int, members: Iterable[str]) -> dict[str, frozenset[int]]:
    """Each member's partitions: every partition of ``range(partitions)`` to exactly one."""
    candidates = sorted(set(members))
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    held: dict[str, set[int]] = {member: set() for member in candidates}
    for partition in range(partitions):
        held[owner(partition, candidates)].add(partition)
    return {member: frozenset(owned) for member, owned in held.items()}


def moved(before: Plan, after: Plan) -> frozenset[int]:
    """The partitions whose owner differs between two plans (new or gone ones included)."""
    owners_before = {p: m for m, owned in before.items() for p in owned}
    owners_after = {p: m for m, owned in after.items() for p in owned}
    keys = owners_before.keys() | owners_after.keys()
    return frozenset(p for p in keys if owners_before.get(p) != owners_after.get(p))


@dataclass
class Members:
    """The live instances, as their heartbeats tell; this instance is always one of them.

    Safe to share between the thread that hears the heartbeats and the one that reads.

    Parameters
    ----------
    me
        This instance's name (``mqtt.client_id``).
    timeout
        Seconds without a heartbeat after which a member counts as gone.
    clock
        Monotonic seconds (tests pass their own).

    Examples
    --------
    >>> now = [0.0]
    >>> members = Members("a", timeout=5.0, clock=lambda: now[0])
    >>> members.heard("b"); members.live()
    ['a', 'b']
    >>> now[0] = 6.0; members.live()
    ['a']
    >>> members.heard("b"); members.left("b"); members.live()
    ['a']
    """

    me: str
    timeout: float
    clock: Callable[[], float]
    _last: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def heard(self, member: str) -> None:
        """`member` sent a heartbeat now."""
        with self._lock:
            self._last[member] = self.clock()

    def left(self, member: str) -> None:
        """`member` said goodbye: it is gone at once, not after the timeout."""
        with self._lock:
            self._last.pop(member, None)

    def live(self) -> list[str]:
        """The members heard from within the timeout, and this one, sorted."""
        now = self.clock()
        with self._lock:
            for member, at in list(self._last.items()):
                if now - at > self.timeout:
                    del self._last[member]
            return sorted({self.me, *self._last})
