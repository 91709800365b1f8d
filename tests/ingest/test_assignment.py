"""Partition assignment among a cluster's instances (`ingest.assignment`): pure logic."""

from __future__ import annotations

import pytest

from ingest.assignment import Members, assign, moved, owner

FLEETS = [["a"], ["a", "b"], ["a", "b", "c"], [f"meshwatch-{i}" for i in range(7)]]


@pytest.mark.parametrize("members", FLEETS, ids=lambda m: f"{len(m)}-members")
@pytest.mark.parametrize("partitions", [1, 8, 16, 100])
def test_every_partition_has_exactly_one_owner(partitions: int, members: list[str]) -> None:
    """The members' shares are disjoint and cover every partition."""
    plan = assign(partitions, members)
    shares = list(plan.values())
    assert sum(len(share) for share in shares) == partitions
    assert frozenset().union(*shares) == frozenset(range(partitions))


def test_every_instance_computes_the_same_plan_whatever_the_order() -> None:
    """The plan depends on who the members are, not on the order they were heard in."""
    assert assign(16, ["c", "a", "b"]) == assign(16, ["a", "b", "c", "a"])


def test_a_member_joining_takes_partitions_only_from_the_others_to_itself() -> None:
    """Only partitions that go to the newcomer move; the rest stay where they were."""
    before, after = assign(64, ["a", "b"]), assign(64, ["a", "b", "c"])
    assert moved(before, after) == after["c"]


def test_a_member_leaving_moves_only_its_partitions() -> None:
    """The partitions of the one that left are spread; no other partition moves."""
    before, after = assign(64, ["a", "b", "c"]), assign(64, ["a", "c"])
    assert moved(before, after) == before["b"]


def test_shares_are_roughly_even() -> None:
    """With 64 partitions and 4 members nobody holds more than twice an even share."""
    plan = assign(64, ["a", "b", "c", "d"])
    assert max(len(share) for share in plan.values()) <= 32


def test_no_members_no_owner() -> None:
    """An empty membership is an error, not a silent plan."""
    with pytest.raises(ValueError, match="no members"):
        owner(0, [])


def test_partitions_must_be_positive() -> None:
    """Zero partitions is refused with the value."""
    with pytest.raises(ValueError, match="got 0"):
        assign(0, ["a"])


def test_a_silent_member_is_gone_after_the_timeout() -> None:
    """A member heard within the timeout is live; one silent for longer is not."""
    now = [100.0]
    members = Members("me", timeout=5.0, clock=lambda: now[0])
    members.heard("other")
    now[0] += 5.0
    assert members.live() == ["me", "other"]
    now[0] += 0.1
    assert members.live() == ["me"]


def test_a_member_that_says_goodbye_is_gone_at_once() -> None:
    """A leaving heartbeat removes the member without waiting for the timeout."""
    members = Members("me", timeout=60.0, clock=lambda: 0.0)
    members.heard("other")
    members.left("other")
    assert members.live() == ["me"]


def test_this_instance_is_always_a_member() -> None:
    """An instance that heard nobody owns everything itself."""
    members = Members("me", timeout=1.0, clock=lambda: 0.0)
    assert assign(8, members.live()) == {"me": frozenset(range(8))}
