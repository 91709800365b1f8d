"""The measurements: generation alone, the simulator publishing, the replayer, the bare baseline.

Every publishing measurement has a fresh `Counter` subscribed before it starts and requires it
to count exactly the messages published afterwards (it may take up to `DRAIN_TIMEOUT_S`
without a new message). Times are wall-clock (``time.monotonic``, ``perf_counter`` for
generation):

- the simulator: `RunSummary.seconds` of `simulators.publisher.run`, from its connection to the
  last PUBACK, generation and encoding included (the fleet's `Simulation` is built before);
- the replayer: `ReplaySummary.seconds`, from its connection to the last PUBACK, reading and
  parsing the recording included;
- the bare baseline: from its first ``publish()`` to its last PUBACK.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulators.publisher import run
from simulators.recording import Recorded, read_recording
from simulators.replayer import replay
from simulators.simulation import Simulation

from . import bare
from .subscriber import Counter
from .workload import START_NS, TOPIC, Workload

GENERATION = "generation"
PUBLISH = "publish"
REPLAY = "replay"
#: Mode names, as the tables print them.
SIM_ONLY = "Simulation.until"
SIM_ENCODE = "Simulation.until + orjson"
SIMULATOR = "simulators.publisher.run"
REPLAY_FILE = "replayer, .jsonl.gz"
REPLAY_LIST = "replayer, list"
BARE = "bare paho"
#: The simulator's window of unacknowledged messages (`simulators.publisher._WINDOW`).
SIMULATOR_WINDOW = 10_000
#: The replayer's (`simulators.replayer._WINDOW`).
REPLAYER_WINDOW = 1_000
#: Seconds the subscriber may go without a new message before its count is final.
DRAIN_TIMEOUT_S = 20.0
_NS = 1_000_000_000


@dataclass
class Result:
    """One measurement.

    Attributes
    ----------
    part : str
        `GENERATION`, `PUBLISH` or `REPLAY`.
    mode : str
        What published (or generated): one of the mode names above.
    batch : int
        Readings per message.
    round : int
        Which round (from 1).
    readings, messages : int
        Readings and messages it made (messages is 0 for generation).
    seconds : float
        Its time, as the module docstring says.
    behind_s : float or None
        How long after the publisher returned the subscriber had its last message.
    problems : list of str
        Wrong counts; empty when all held.
    """

    part: str
    mode: str
    batch: int
    round: int
    readings: int
    messages: int
    seconds: float
    behind_s: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def readings_per_s(self) -> float:
        """Readings per second."""
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds

    def as_dict(self) -> dict[str, Any]:
        """The result and its rates, for the JSON file."""
        return {
            **asdict(self),
            "readings_per_s": self.readings_per_s,
            "messages_per_s": self.messages_per_s,
        }


def generation(workload: Workload, round_: int, *, encode: bool) -> Result:
    """Readings/s of `Simulation.until` a simulated second a step, payloads encoded or not."""
    count = len(workload.readings)
    sim = Simulation(workload.fleet, START_NS)
    made = 0
    started = time.perf_counter()
    while made < count:
        readings = sim.until(sim.next_ns + _NS)
        if encode:
            for reading in readings:
                orjson.dumps(reading.payload())
        made += len(readings)
    seconds = time.perf_counter() - started
    mode = SIM_ENCODE if encode else SIM_ONLY
    return Result(GENERATION, mode, 1, round_, made, 0, seconds)


def _delivered(sub: Counter, expected: int, returned: float, result: Result) -> Result:
    """Wait for the subscriber to count ``expected`` messages and note it in ``result``."""
    sub.wait_for(expected, DRAIN_TIMEOUT_S)
    result.behind_s = max(0.0, sub.last - returned)
    if sub.count != expected:
        result.problems.append(f"subscriber counted {sub.count:,} of {expected:,} messages")
    return result


def simulator(
    host: str, port: int, workload: Workload, batch: int, expected: int, round_: int
) -> Result:
    """`simulators.publisher.run` as fast as possible, ``count`` = the workload's readings."""
    count = len(workload.readings)
    with Counter(host, port, f"simulatorsbench-sub-{batch}-{round_}") as sub:
        summary = run(
            workload.fleet,
            host=host,
            port=port,
            topic=TOPIC,
            speed=None,
            count=count,
            batch=batch,
            progress=False,
            start_ns=START_NS,
        )
        returned = time.monotonic()
        result = Result(
            PUBLISH, SIMULATOR, batch, round_, summary.readings, summary.messages, summary.seconds
        )
        if summary.readings != count:
            result.problems.append(f"published {summary.readings:,} readings, not {count:,}")
        if summary.messages != expected:
            result.problems.append(f"published {summary.messages:,} messages, not {expected:,}")
        return _delivered(sub, summary.messages, returned, result)


def baseline(
    host: str,
    port: int,
    part: str,
    messages: list[tuple[str, bytes]],
    readings: int,
    batch: int,
    window: int,
    round_: int,
) -> Result:
    """The bare paho publisher on ``messages`` with ``window``."""
    with Counter(host, port, f"simulatorsbench-sub-bare-{part}-{batch}-{round_}") as sub:
        seconds = bare.publish(host, port, messages, window)
        returned = time.monotonic()
        result = Result(part, BARE, batch, round_, readings, len(messages), seconds)
        return _delivered(sub, len(messages), returned, result)


def replayer(
    host: str, port: int, source: Path | list[Recorded], expected: int, round_: int
) -> Result:
    """`simulators.replayer.replay` as fast as possible, of the file or of a list."""
    from_file = isinstance(source, Path)
    mode = REPLAY_FILE if from_file else REPLAY_LIST
    messages = read_recording(source) if isinstance(source, Path) else source
    with Counter(host, port, f"simulatorsbench-sub-replay-{int(from_file)}-{round_}") as sub:
        summary = replay(messages, host, port, speed=None, progress=False)
        returned = time.monotonic()
        result = Result(
            REPLAY, mode, 1, round_, summary.messages, summary.messages, summary.seconds
        )
        if summary.messages != expected:
            result.problems.append(f"replayed {summary.messages:,} messages, not {expected:,}")
        return _delivered(sub, summary.messages, returned, result)


@dataclass(frozen=True)
class Summary:
    """The rounds of one (part, mode, batch): medians and ranges of the rates."""

    part: str
    mode: str
    batch: int
    readings: int
    messages: int
    rounds: int
    readings_per_s: float
    readings_per_s_min: float
    readings_per_s_max: float
    messages_per_s: float


def summarise(results: list[Result]) -> list[Summary]:
    """One `Summary` per (part, mode, batch), in the order they were first measured."""
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.part, r.mode, r.batch), []).append(r)
    out = []
    for (part, mode, batch), rs in groups.items():
        rates = [r.readings_per_s for r in rs]
        out.append(
            Summary(
                part,
                mode,
                batch,
                rs[0].readings,
                rs[0].messages,
                len(rs),
                statistics.median(rates),
                min(rates),
                max(rates),
                statistics.median(r.messages_per_s for r in rs),
            )
        )
    return out
