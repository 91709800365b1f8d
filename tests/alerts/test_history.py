"""Alert history rebuilt from store rows: episodes, their actions, silences and the summary.

Pure functions over rows (`alerts.history.episodes`, `alerts.history.summary`), and the
reply of the ``history`` command (`alerts.history.query`) read from a real embedded store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from alerts.history.episodes import Episode, build
from alerts.history.query import answer, read
from alerts.history.summary import summary
from alerts.matchers import parse_all
from ingest.base import Batch, Point
from ingest.embedded import EmbeddedStore
from ingest.embeddedreader import EmbeddedReader
from ingest.query import Row

T0 = 1_767_225_600_000_000_000
S = 1_000_000_000


def _alert(
    t: int,
    state: str,
    alert_id: str = "e1",
    asset: str = "cnc-1",
    rule: str = "hot",
    severity: str = "critical",
) -> Row:
    tags = {"site": "lyon", "asset": asset, "rule": rule, "severity": severity}
    return Row("alert", tags, {"state": state, "id": alert_id, "kind": "cnc-mill"}, T0 + t * S)


def _action(t: int, action: str, alert_id: str = "e1", **fields: str) -> Row:
    tags = {"site": "lyon", "asset": "cnc-1", "rule": "hot", "action": action}
    return Row("alert_action", tags, {"id": alert_id, "by": "ana", **fields}, T0 + t * S)


def _told(t: int, receiver: str, state: str, alert_id: str = "e1") -> Row:
    tags = {"site": "lyon", "asset": "cnc-1", "rule": "hot", "receiver": receiver, "state": state}
    return Row("notification", tags, {"id": alert_id, "notification": "n", "alerts": 1}, T0 + t * S)


def _silence(t: int, matchers: list[str], start: int, end: int, silence_id: str = "s1") -> Row:
    tags = {"site": "", "asset": "", "rule": "", "action": "silence"}
    fields = {
        "id": silence_id,
        "by": "carl",
        "comment": "bearing swap",
        "matchers": orjson.dumps(matchers).decode(),
        "starts_at": T0 + start * S,
        "ends_at": T0 + end * S,
    }
    return Row("alert_action", tags, fields, T0 + t * S)


def _expire(t: int, silence_id: str = "s1") -> Row:
    tags = {"site": "", "asset": "", "rule": "", "action": "expire"}
    return Row("alert_action", tags, {"id": silence_id, "by": "carl"}, T0 + t * S)


# --- episodes ---------------------------------------------------------------------------


def test_a_firing_and_its_resolution_make_one_episode_with_its_duration() -> None:
    """Fired, resolved, and the time between them."""
    [e] = build([_alert(40, "resolved"), _alert(10, "firing")])
    assert (e.fired, e.resolved, e.duration(0)) == (T0 + 10 * S, T0 + 40 * S, 30 * S)
    assert (e.rule, e.site, e.asset, e.severity, e.kind) == (
        "hot",
        "lyon",
        "cnc-1",
        "critical",
        "cnc-mill",
    )


def test_an_episode_without_resolution_is_open_and_lasts_until_now() -> None:
    """Still firing: no end, its duration runs to the time asked."""
    [e] = build([_alert(10, "firing")])
    assert e.resolved is None
    assert e.duration(T0 + 25 * S) == 15 * S
    assert e.to_json(T0 + 25 * S)["open"] is True


def test_an_episode_whose_firing_is_not_in_the_store_has_no_start() -> None:
    """Only the resolution: the start is unknown, and so is the duration."""
    [e] = build([_alert(40, "resolved")])
    assert (e.fired, e.duration(T0)) == (None, None)


def test_actions_belong_to_their_alert_in_time_order() -> None:
    """Ack, shelve and verdict of this alert, oldest first; another alert's ack is not here."""
    alerts = [_alert(10, "firing"), _alert(20, "firing", "e2", asset="cnc-2")]
    actions = [
        _action(30, "feedback", verdict="fault", comment="worn"),
        _action(12, "ack", comment="on it"),
        _action(15, "ack", alert_id="e2"),
    ]
    e1, e2 = build(alerts, actions)
    assert [(a.action, a.at) for a in e1.actions] == [
        ("ack", T0 + 12 * S),
        ("feedback", T0 + 30 * S),
    ]
    assert (e1.verdict(), e1.first("ack").comment if e1.first("ack") else None) == (
        "fault",
        "on it",
    )
    assert [a.action for a in e2.actions] == ["ack"]


def test_a_later_verdict_replaces_an_earlier_one() -> None:
    """Normal, then fault: the episode's verdict is fault."""
    actions = [_action(12, "feedback", verdict="normal"), _action(13, "feedback", verdict="fault")]
    [e] = build([_alert(10, "firing")], actions)
    assert e.verdict() == "fault"


def test_notifications_are_counted_per_receiver_and_state() -> None:
    """Each receiver: how many firing and resolved notices, and the last one's time."""
    told = [_told(10, "mqtt", "firing"), _told(70, "mqtt", "firing"), _told(90, "mqtt", "resolved")]
    [e] = build(
        [_alert(10, "firing"), _alert(90, "resolved")], (), [*told, _told(10, "log", "firing")]
    )
    receivers = e.to_json(T0)["notifications"]
    assert receivers["mqtt"] == {"firing": 2, "resolved": 1, "last": "2026-01-01T00:01:30.000Z"}
    assert (receivers["log"]["firing"], receivers["log"]["resolved"]) == (1, 0)


@pytest.mark.parametrize(
    ("matchers", "window", "linked"),
    [
        (["site=lyon", "asset=~cnc-.*"], (0, 3600), True),
        (["asset=cnc-9"], (0, 3600), False),
        (["site=lyon"], (50, 3600), True),
        (["site=lyon"], (0, 5), False),
        (["site=lyon"], (100, 3600), False),
        (["kind=cnc-mill"], (0, 3600), True),
    ],
    ids=["matches", "other-asset", "starts-mid-episode", "ended-before", "starts-after", "kind"],
)
def test_a_silence_is_linked_when_its_matchers_match_and_its_window_overlaps(
    matchers: list[str], window: tuple[int, int], linked: bool
) -> None:
    """Matchers on the alert's labels, and the silence's window over the episode's."""
    alerts = [_alert(10, "firing"), _alert(90, "resolved")]
    [e] = build(alerts, silences=[_silence(0, matchers, *window)])
    found = [a for a in e.actions if a.action == "silence"]
    assert bool(found) == linked
    if linked:
        assert (found[0].by, found[0].comment, found[0].silence) == ("carl", "bearing swap", "s1")


def test_a_silence_expired_before_the_episode_is_not_linked() -> None:
    """Planned for an hour, expired after 5 s: it no longer covers an episode at 10 s."""
    silences = [_silence(0, ["site=lyon"], 0, 3600), _expire(5)]
    [e] = build([_alert(10, "firing")], silences=silences)
    assert e.actions == []


@pytest.mark.parametrize(
    ("fired", "linked"),
    [(30, True), (200, False)],
    ids=["fired-inside-the-window", "fired-outside-it"],
)
def test_a_repeating_silence_is_linked_only_where_its_window_held(fired: int, linked: bool) -> None:
    """``every thu 00:00-00:02`` for a year: linked where the window held.

    An episode fired at 00:00:30 on that Thursday (T0) is under it; one fired at 00:03:20 and
    resolved at 00:04 is not.
    """
    row = _silence(0, ["site=lyon"], 0, 86_400 * 365)
    every = {"weekdays": ["thursday"], "times": [{"start_time": "00:00", "end_time": "00:02"}]}
    row.fields["every"] = orjson.dumps(every).decode()
    [e] = build([_alert(fired, "firing"), _alert(240, "resolved")], silences=[row])
    assert bool([a for a in e.actions if a.action == "silence"]) == linked


def test_matchers_select_the_episodes() -> None:
    """Only the episodes whose labels satisfy every matcher."""
    alerts = [_alert(10, "firing"), _alert(20, "firing", "e2", asset="printer-1")]
    found = build(alerts, matchers=parse_all(["asset=~cnc-.*", "severity=critical"]))
    assert [e.id for e in found] == ["e1"]


# --- summary ----------------------------------------------------------------------------


def _episode(
    alert_id: str, asset: str, rule: str, fired: int, resolved: int | None, *actions: Row
) -> Episode:
    rows = [_alert(fired, "firing", alert_id, asset, rule)]
    if resolved is not None:
        rows.append(_alert(resolved, "resolved", alert_id, asset, rule))
    [e] = build(rows, [r for r in actions if r.fields["id"] == alert_id])
    return e


def test_summary_counts_fired_false_alarms_and_faults_per_asset_and_rule() -> None:
    """Three episodes on two assets and two rules: each tally counts its own."""
    episodes = [
        _episode("e1", "cnc-1", "hot", 0, 60, _action(1, "feedback", "e1", verdict="normal")),
        _episode(
            "e2", "cnc-1", "anomaly", 100, 160, _action(101, "feedback", "e2", verdict="fault")
        ),
        _episode("e3", "cnc-2", "hot", 200, None),
    ]
    tallies = summary(episodes)
    assets = {t["key"]: t for t in tallies["assets"]}
    rules = {t["key"]: t for t in tallies["rules"]}
    assert [(t["key"], t["fired"]) for t in tallies["assets"]] == [
        ("lyon/cnc-1", 2),
        ("lyon/cnc-2", 1),
    ]
    assert (assets["lyon/cnc-1"]["false_alarms"], assets["lyon/cnc-1"]["faults"]) == (1, 1)
    assert (rules["hot"]["fired"], rules["hot"]["false_alarms"], rules["hot"]["faults"]) == (
        2,
        1,
        0,
    )
    assert (tallies["all"]["fired"], tallies["all"]["resolved"]) == (3, 2)


def test_mean_time_to_acknowledge_counts_the_first_ack_of_acked_episodes() -> None:
    """Acked after 30 s and after 90 s (a second ack ignored); one never acked: MTTA 60 s."""
    episodes = [
        _episode("e1", "cnc-1", "hot", 0, None, _action(30, "ack", "e1"), _action(50, "ack", "e1")),
        _episode("e2", "cnc-1", "hot", 100, None, _action(190, "ack", "e2")),
        _episode("e3", "cnc-1", "hot", 200, None),
    ]
    [rule] = summary(episodes)["rules"]
    assert (rule["acked"], rule["mtta_s"]) == (2, 60.0)


def test_mean_time_to_resolve_counts_the_resolved_episodes_only() -> None:
    """Resolved after 60 s and 180 s; one still open: MTTR 120 s; none: no MTTR."""
    episodes = [
        _episode("e1", "cnc-1", "hot", 0, 60),
        _episode("e2", "cnc-1", "hot", 100, 280),
        _episode("e3", "cnc-1", "hot", 300, None),
    ]
    [rule] = summary(episodes)["rules"]
    assert (rule["resolved"], rule["mttr_s"]) == (2, 120.0)
    assert summary([_episode("e4", "cnc-1", "hot", 0, None)])["all"]["mttr_s"] is None


# --- the reply, from a real embedded store ----------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[EmbeddedStore, EmbeddedReader]]:
    path = tmp_path / "meshwatch.db"
    store = EmbeddedStore(path)
    yield store, EmbeddedReader(path)
    store.close()


def _point(row: Row) -> Point:
    return Point(row.measurement, row.tags, row.fields, row.ts)


def _write(store: EmbeddedStore, *rows: Row) -> None:
    store.write(Batch(points=[_point(r) for r in rows]))


def test_the_reply_lists_the_newest_episodes_first_up_to_the_limit(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """Five episodes, limit 2: the two newest, and three more."""
    writer, reader = store
    _write(writer, *[_alert(10 * n, "firing", f"e{n}", asset=f"cnc-{n}") for n in range(5)])
    reply = answer(reader, now=T0 + 100 * S, since=3600, limit=2)
    assert [e["id"] for e in reply["episodes"]] == ["e4", "e3"]
    assert (reply["total"], reply["more"]) == (5, 3)


def test_the_reply_with_summary_carries_the_tallies_and_no_episodes(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """``summary``: the counts of every episode, the list left out."""
    writer, reader = store
    _write(writer, *[_alert(10 * n, "firing", f"e{n}") for n in range(3)])
    reply = answer(reader, now=T0 + 100 * S, since=3600, with_summary=True)
    assert (reply["episodes"], reply["summary"]["all"]["fired"]) == ([], 3)


def test_an_episode_resolved_in_the_window_keeps_the_start_it_had_before(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """Fired 2 h ago, acked then, resolved 10 min ago, asked for the last hour: all of it."""
    writer, reader = store
    _write(writer, _alert(0, "firing"), _action(60, "ack"), _told(0, "mqtt", "firing"))
    _write(writer, _alert(6600, "resolved"), _told(6600, "mqtt", "resolved"))
    [e] = read(reader, start=T0 + 3600 * S)
    assert (e.fired, e.resolved) == (T0, T0 + 6600 * S)
    assert [a.action for a in e.actions] == ["ack"]
    assert [(t.receiver, t.state) for t in e.told] == [("mqtt", "firing"), ("mqtt", "resolved")]


def _escalating(*steps: tuple[int, str, str]) -> list[Row]:
    """An ``anomaly`` alert's records: (seconds, state, severity) each."""
    return [_alert(t, state, rule="anomaly", severity=sev) for t, state, sev in steps]


def test_an_episode_lists_its_changes_of_level_and_the_highest_severity() -> None:
    """Warning, critical, warning again, resolved: one episode, critical at worst, two changes."""
    [e] = build(
        _escalating(
            (0, "firing", "warning"),
            (60, "escalated", "critical"),
            (300, "deescalated", "warning"),
            (600, "resolved", "warning"),
        )
    )
    assert (e.fired, e.resolved, e.severity) == (T0, T0 + 600 * S, "critical")
    assert [(c.severity, c.at) for c in e.levels] == [
        ("critical", T0 + 60 * S),
        ("warning", T0 + 300 * S),
    ]


def test_an_episode_that_escalated_in_the_window_keeps_its_start_from_before(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """Fired as a warning 2 h ago, critical 10 min ago: asked for the last hour, all of it."""
    writer, reader = store
    _write(writer, *_escalating((0, "firing", "warning"), (6600, "escalated", "critical")))
    [e] = read(reader, start=T0 + 3600 * S)
    assert (e.fired, e.severity, [c.severity for c in e.levels]) == (T0, "critical", ["critical"])


def test_a_severity_matcher_finds_an_episode_that_escalated(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """``severity=critical`` selects the episode that became critical, with its firing."""
    writer, reader = store
    _write(writer, *_escalating((100, "firing", "warning"), (160, "escalated", "critical")))
    [e] = read(reader, start=T0, matchers=parse_all(["severity=critical"]))
    assert (e.fired, e.severity) == (T0 + 100 * S, "critical")
    assert read(reader, start=T0, matchers=parse_all(["severity=warning"])) == []


def test_the_window_leaves_out_episodes_over_before_it(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """An episode that fired and resolved two hours ago is not in the last hour."""
    writer, reader = store
    _write(writer, _alert(0, "firing"), _alert(60, "resolved"), _alert(7000, "firing", "e2"))
    assert [e.id for e in read(reader, start=T0 + 3600 * S)] == ["e2"]


def test_a_silence_added_days_before_the_window_is_linked(
    store: tuple[EmbeddedStore, EmbeddedReader],
) -> None:
    """A week-long maintenance silence added three days before the window still counts."""
    writer, reader = store
    _write(writer, _silence(-3 * 86400, ["site=lyon"], -3 * 86400, 4 * 86400))
    _write(writer, _alert(10, "firing"))
    [e] = read(reader, start=T0)
    assert [a.action for a in e.actions] == ["silence"]
