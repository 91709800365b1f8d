"""The alert engine on a real alerts.db, fed a small fleet's readings in event time.

Three sites with a CNC mill each report once a second of event time; the engine's wall clock
is a value the test moves. Notifications are read back from the outbox table the engine
commits them to, and the health map and reroute advice from a publisher that records.
Shared by the engine's tests and the alarm-hygiene tests; the ``plant`` fixture (conftest)
makes plants.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from alerts.assetstate import SharedAlertState
from alerts.base import Alert, Notification, Observation
from alerts.commands.desk import AlertDesk
from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.route import Route, RouteSpec
from alerts.rules import AnomalyRule, DeadmanRule, LimitRule
from alerts.settings import RulesFile
from alerts.state import AlertState
from alerts.timeintervals import NamedTimeInterval, windows
from ingest.base import Point

# 2026-01-01T00:00:00Z: event time starts here (ns), and so does the wall clock (s).
T0 = 1_767_225_600_000_000_000
WALL0 = 1_767_225_600.0
SECOND = 1_000_000_000

CNC_A = ("plant-a", "cnc-1")
CNC_B = ("plant-b", "cnc-2")
CNC_C = ("plant-c", "cnc-3")
FLEET = (CNC_A, CNC_B, CNC_C)


def fast_route(receivers: str = "mqtt, log", repeat: str = "30s") -> str:
    """A route telling ``receivers`` at once and of changes within a second, repeating."""
    return f"""
receivers: [{receivers}]
group_by: ['...']
group_wait: 0s
group_interval: 1s
repeat_interval: {repeat}
"""


# Notifications go out at once and changes within a second; repeats every 30 s.
FAST_ROUTE = fast_route()

#: A mill over 90 °C: what the ``hot`` rule of `hot_and_offline` fires on.
HOT = {"spindle_temp_c": 95.0}


def hot_and_offline(offline_for: str = "5m", *more: str) -> str:
    """Rules: ``hot`` (critical over 90 °C), ``offline`` after ``offline_for``, then ``more``."""
    rules = [
        "{name: hot, type: limit, condition: spindle_temp_c > 90, severity: critical}",
        f"{{name: offline, type: deadman, severity: critical, for: {offline_for}}}",
        *more,
    ]
    return "rules:\n" + "".join(f"  - {rule}\n" for rule in rules)


AnyRule = AnomalyRule | LimitRule | DeadmanRule


def route_of(text: str) -> Route:
    """The routing tree of a ``route:`` document; ``time_intervals:`` beside it are its windows."""
    document = yaml.safe_load(text)
    named = [NamedTimeInterval.model_validate(t) for t in document.pop("time_intervals", [])]
    return Route.build(RouteSpec.model_validate(document), windows=windows(named))


def rules_of(text: str) -> list[AnyRule]:
    return list(RulesFile.model_validate(yaml.safe_load(text)).rules)


# The default rules as they were before the on-delay of issue 11: the anomaly rules fire on
# flagged readings in a row (3 for the warning, 10 for the critical), not on 2 minutes of them.
# Hysteresis, minimum firing duration and deadman are the defaults'. Tests whose subject is not
# the default rules (silences, acks, shelves, replay, restarts, advice, health...) use these,
# so an alert fires within seconds and a change of the defaults does not change what they test.
QUICK_RULES = """
rules:
  - {name: anomaly, type: anomaly, severity: warning, for_readings: 3, resolve_after: 10,
     resolve_below: 0.4, keep_firing_for: 5m}
  - name: anomaly_severe
    type: anomaly
    severity: critical
    for_readings: 10
    resolve_after: 10
    min_score: 0.8
    resolve_below: 0.7
    keep_firing_for: 5m
    message: >-
      {asset} at {site} is failing: {top_metric} far out of its normal range
      for {duration} (score {value:.2f})
  - {name: offline, type: deadman, severity: critical, for: 5m}
"""


def quick_rules() -> list[AnyRule]:
    """The default rules firing on readings in a row, not on 2 minutes (`QUICK_RULES`).

    ``anomaly`` fires on the 3rd flagged reading in a row, ``anomaly_severe`` on the 10th
    scoring 0.8 or more: one reading a second, a fault fires within seconds.
    """
    return rules_of(QUICK_RULES)


def prompt_rules() -> list[AnyRule]:
    """The quick rules with no minimum firing duration: alerts resolve after hysteresis alone.

    For tests about what follows a resolution, not about how long an alert must fire.
    """
    return [
        AnomalyRule.model_validate({**r.model_dump(by_alias=True), "keep_firing_for": 0})
        if isinstance(r, AnomalyRule)
        else r
        for r in quick_rules()
    ]


@dataclass(frozen=True, slots=True)
class Published:
    """One message the engine published."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return orjson.loads(self.payload)


class RecordingPublisher:
    """A `Publisher` that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Published] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.messages.append(Published(topic, payload, retain))

    def publish_confirmed(self, topic: str, payload: bytes, timeout: float) -> None:
        # Only clearing what a hand-over gave up waits for the broker (alerts.health.broadcast).
        self.messages.append(Published(topic, payload, retain=True))

    def on(self, topic: str) -> list[Published]:
        return [m for m in self.messages if m.topic == topic]


class WallClock:
    """Wall-clock seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.now = WALL0

    def __call__(self) -> float:
        return self.now


@dataclass
class Plant:
    """An alert engine on a real alerts.db, fed a fleet's readings in event time.

    `run` sends one reading per reporting asset per step; `t` is event seconds since T0.
    """

    path: Path
    rules: list[AnyRule]
    route: Route
    assets: tuple[tuple[str, str], ...] = FLEET
    wall: WallClock = field(default_factory=WallClock)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    t: int = 0
    points: list[Point] = field(default_factory=list)
    batches: list[list[Observation]] = field(default_factory=list)
    #: Opens the store of assets' alert state this plant shares with others (a cluster's).
    shared: Callable[[], SharedAlertState] | None = None
    #: The instance's name (``mqtt.client_id``), its holder name in the shared store.
    instance: str = "meshwatch"
    engine: AlertEngine = field(init=False)
    closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.engine = self._open()

    def _open(self) -> AlertEngine:
        self.closed = False
        return AlertEngine(
            self.rules,
            self.route,
            AlertState(self.path),
            metrics=AlertMetrics(),
            publisher=self.publisher,
            wall=self.wall,
            instance=self.instance,
            shared=self.shared() if self.shared is not None else None,
        )

    def run(
        self,
        steps: int,
        *,
        faulty: Iterable[tuple[str, str]] = (),
        score: float = 0.6,
        silent: Iterable[tuple[str, str]] = (),
        scores: dict[tuple[str, str], float] | None = None,
        metrics: dict[tuple[str, str], dict[str, float]] | None = None,
        every: int = 1,
        wall_every: float = 1.0,
        tick: bool = False,
    ) -> list[Point]:
        """Send `steps` rounds of readings, `every` event seconds apart; return alert points."""
        faulty, silent = set(faulty), set(silent)
        out: list[Point] = []
        for _ in range(steps):
            self.t += every
            self.wall.now += wall_every / 2 if tick else wall_every
            batch = [
                self.reading(
                    key,
                    anomalous=key in faulty,
                    score=score if key in faulty else (scores or {}).get(key, 0.1),
                    metrics=(metrics or {}).get(key),
                )
                for key in self.assets
                if key not in silent
            ]
            self.batches.append(batch)
            out.extend(self.engine.observe(batch))
            self.engine.commit()  # the pipeline stored the points
            if tick:  # a timer between readings, half-way to the next one
                self.wall.now += wall_every / 2
                out.extend(self.engine.tick())
                self.engine.commit()
        self.points.extend(out)
        return out

    def reading(
        self,
        key: tuple[str, str],
        *,
        anomalous: bool = False,
        score: float = 0.1,
        metrics: dict[str, float] | None = None,
    ) -> Observation:
        site, asset = key
        return Observation(
            site,
            asset,
            "cnc-mill",
            T0 + self.t * SECOND,
            metrics or {"spindle_temp_c": 60.0},
            score=score,
            anomalous=anomalous,
            top_metric="vibration_rms" if anomalous else None,
        )

    @property
    def desk(self) -> AlertDesk:
        """The desk that takes silences, acks and shelves for the current engine."""
        return AlertDesk(self.engine)

    def restart(self) -> None:
        """Close the engine and open a new one on the same alerts.db."""
        self.close()
        self.engine = self._open()

    def crash(self) -> None:
        """Drop the engine unsaved and open a new one: a SIGKILL after the last commit."""
        self.engine.saver.state.close()  # what close() would save on the way out is lost
        if self.engine.saver.shared is not None:
            self.engine.saver.shared.close()
        self.engine = self._open()

    def close(self) -> None:
        if not self.closed:
            self.engine.close()
            self.closed = True

    def outbox(self) -> list[Notification]:
        """Every notification committed to the outbox, oldest first."""
        with closing(sqlite3.connect(self.path)) as conn:
            rows = conn.execute("SELECT body FROM outbox ORDER BY id").fetchall()
        return [Notification.from_json(orjson.loads(body)) for (body,) in rows]

    def told(self) -> list[tuple[str, str, str, str]]:
        """Each alert of each notification as (receiver, rule, asset, state)."""
        return [
            (n.receiver, a["rule"], a["asset"], a["state"]) for n in self.outbox() for a in n.alerts
        ]

    def health(self, key: tuple[str, str]) -> list[dict[str, Any]]:
        """The health messages published for one asset, oldest first."""
        return [m.json() for m in self.publisher.on(f"meshwatch/health/{key[0]}/{key[1]}")]

    def advice(self, key: tuple[str, str]) -> list[Published]:
        """The reroute messages published for one asset, oldest first."""
        return self.publisher.on(f"meshwatch/reroute/{key[0]}/{key[1]}")

    def open_alert(self, rule: str, key: tuple[str, str]) -> Alert:
        (found,) = [
            a for a in self.engine.open_alerts() if (a.rule, a.site, a.asset) == (rule, *key)
        ]
        return found


def at(seconds: int) -> int:
    """Event time `seconds` after T0, in ns."""
    return T0 + seconds * SECOND
