"""`alerts.sharedstate.PostgresAlertState` on a real PostgreSQL database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from alerts.assetstate import AssetAlerts, SharedChanges
from alerts.errors import SharedStateError
from alerts.sharedstate import PostgresAlertState

pytestmark = pytest.mark.integration

KEY = ("north", "press-1")
EPISODE = ("hot", *KEY)


def _state(**values: object) -> AssetAlerts:
    """A whole asset state, every part filled."""
    fields: dict[str, object] = {
        "kind": "press",
        "last_ts": 1_000,
        "heard": 1_200,
        "clock": 1_300,
        "episodes": {"hot": {"alert": {"id": "9c0e3f2a9c0d1e4b"}, "since": 900}},
        "told": {"hot": {"mqtt": 950, "log": 950}},
        "flaps": {"hot": [900]},
        "health": {"site": "north", "asset": "press-1", "status": "critical"},
        "shelves": [{"alert_id": "9c0e3f2a9c0d1e4b", "by": "ana", "ends_at": 7200.0}],
    }
    fields.update(values)
    return AssetAlerts(*KEY, **fields)  # type: ignore[arg-type]


@pytest.fixture
def stores(postgres_url: str) -> Iterator[Callable[[str], PostgresAlertState]]:
    """Open instances' views of one shared state, in tables of this test's own."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    opened: list[PostgresAlertState] = []

    def open_(instance: str) -> PostgresAlertState:
        opened.append(PostgresAlertState(postgres_url, instance, table_prefix=prefix))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def test_another_instance_claims_the_whole_state_one_handed_over(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """Episodes, who was told, flaps, last reading, health and shelves come back as given."""
    a, b = stores("a"), stores("b")
    assert a.hand_over([_state()], keep=False) == set()
    assert b.claim([KEY]) == {KEY: _state()}


def test_handing_over_leaves_the_asset_to_whoever_reads_it_next(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """A hand-over writes no holder; a claim makes the claimer the holder."""
    a, b = stores("a"), stores("b")
    a.hand_over([_state()], keep=False)
    assert a.holders() == {KEY: None}
    b.claim([KEY])
    assert a.holders() == {KEY: "b"}


def test_an_instance_takes_back_what_it_held_when_it_stopped(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """Kept at shutdown, the assets are this instance's on its next start, and no other's."""
    stores("a").hand_over([_state()], keep=True)
    assert stores("a").held() == [_state()]
    assert stores("b").held() == []


def test_a_save_leaves_alone_an_asset_another_instance_claimed(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """The save reports the asset and does not write over the claimer's state."""
    a, b = stores("a"), stores("b")
    a.save(SharedChanges(assets={KEY: ("press", 1_000, 1_200)}))
    b.claim([KEY])
    late = SharedChanges(episodes={EPISODE: {"stale": True}}, assets={KEY: ("press", 5, 5)})
    assert a.save(late) == {KEY}
    saved = b.claim([KEY])[KEY]
    assert (saved.last_ts, saved.episodes) == (1_000, {})


def test_a_save_writes_episodes_and_who_was_told(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """An episode saved with the receivers told is claimed with them."""
    a = stores("a")
    a.save(SharedChanges(episodes={EPISODE: {"since": 1}}, told={EPISODE: {"mqtt": 7}}))
    saved = stores("b").claim([KEY])[KEY]
    assert (saved.episodes, saved.told) == ({"hot": {"since": 1}}, {"hot": {"mqtt": 7}})


def test_none_in_a_save_deletes_the_episode_and_its_flap_history(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """A resolved episode, and a flap history past its horizon, leave the shared state."""
    a = stores("a")
    a.hand_over([_state()], keep=True)
    a.save(SharedChanges(episodes={EPISODE: None}, flaps={EPISODE: None}))
    saved = a.held()[0]
    assert (saved.episodes, saved.flaps) == ({}, {})


def test_claiming_an_asset_never_saved_finds_nothing(
    stores: Callable[[str], PostgresAlertState],
) -> None:
    """A new asset has no saved state: the claimer starts it afresh."""
    assert stores("a").claim([KEY]) == {}


def test_a_lost_connection_is_opened_again(
    stores: Callable[[str], PostgresAlertState], postgres_url: str
) -> None:
    """After the server dropped the connection, the next call reconnects."""
    a = stores("a")
    a.hand_over([_state()], keep=True)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(SharedStateError):
        a.held()  # the call that finds the connection gone fails, and is retried
    assert a.held() == [_state()]


def test_an_unreachable_database_is_a_shared_state_error() -> None:
    """A URL nobody answers raises `SharedStateError` naming the problem."""
    with pytest.raises(SharedStateError, match="cannot reach the shared alert state"):
        PostgresAlertState("postgresql://127.0.0.1:1/none?connect_timeout=2", "a")
