"""How well the alerts caught a run's faults: scoring against ground truth (demo, ``evaluate``).

Pure functions over the simulator's ground truth and the alert messages the pipeline sent
(``meshwatch/alerts/{site}/{asset}``, `alerts.base.Alert.to_json`), in event time. The
messages are first folded into episodes, one per alert id: when it fired (``started_at``)
and when it cleared (``resolved_at``, None while it still fires). A fault is detected by the
first episode on its asset that fired between its start and a grace period after its end;
its delay is that episode's firing time minus the fault's start. An episode on an asset
outside every fault of that asset (plus the grace) is a false alarm. Reading the simulator's
labels file and printing the findings are the wiring's (`meshwatch.runevaluation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.timestamps import parse_rfc3339

#: An alert this long after a fault ended still counts as its detection: a deadman fires
#: ``for`` after the silence began, and hysteresis keeps a fault's alert a while.
GRACE_NS = 10 * 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault, from the simulator's labels file."""

    site: str
    asset: str
    fault: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Episode:
    """One alert episode (one alert id): its rule and asset, when it fired and cleared (ns).

    ``cleared`` is None when the alert was still firing when the messages ended.
    """

    id: str
    site: str
    asset: str
    rule: str
    fired: int
    cleared: int | None = None


def episodes(alerts: Iterable[Mapping[str, Any]]) -> list[Episode]:
    """The episodes in alert messages, one per id, in the order they fired.

    A message is the alert as it was when sent: a repeat of a firing alert carries the same
    id and ``started_at``, and the message of its resolution adds ``resolved_at``.

    Examples
    --------
    >>> fired = {"id": "a1", "site": "lyon", "asset": "cnc-1", "rule": "anomaly",
    ...          "state": "firing", "started_at": "1970-01-01T00:00:01Z", "resolved_at": None}
    >>> cleared = {**fired, "state": "resolved", "resolved_at": "1970-01-01T00:00:04Z"}
    >>> episodes([fired, fired, cleared])
    [Episode(id='a1', site='lyon', asset='cnc-1', rule='anomaly', fired=1000000000, \
cleared=4000000000)]
    """
    first: dict[str, Mapping[str, Any]] = {}
    cleared: dict[str, int] = {}
    for a in alerts:
        key = str(a["id"])
        first.setdefault(key, a)
        if a.get("resolved_at"):
            cleared.setdefault(key, parse_rfc3339(a["resolved_at"]))
    found = [
        Episode(
            key,
            str(a["site"]),
            str(a["asset"]),
            str(a["rule"]),
            parse_rfc3339(a["started_at"]),
            cleared.get(key),
        )
        for key, a in first.items()
    ]
    found.sort(key=lambda e: (e.fired, e.id))
    return found


@dataclass(frozen=True, slots=True)
class Finding:
    """A fault and how it was caught: the first alert's rule, and its delay (ns), or None."""

    fault: Fault
    rule: str | None
    delay: int | None

    @property
    def detected(self) -> bool:
        """Whether any alert named the faulty asset in time."""
        return self.rule is not None

    def to_json(self) -> dict[str, Any]:
        """The finding as ``evaluate --json`` and the alarm benchmark write it (delay in s).

        Examples
        --------
        >>> wear = Fault("lyon", "cnc-2", "bearing_wear", 0, 60)
        >>> Finding(wear, "anomaly", 1_500_000_000).to_json()
        {'site': 'lyon', 'asset': 'cnc-2', 'fault': 'bearing_wear', 'detected': True, \
'rule': 'anomaly', 'delay_s': 1.5}
        """
        return {
            "site": self.fault.site,
            "asset": self.fault.asset,
            "fault": self.fault.fault,
            "detected": self.detected,
            "rule": self.rule,
            "delay_s": None if self.delay is None else self.delay / 1e9,
        }


@dataclass(frozen=True, slots=True)
class Score:
    """The verdict: one finding per fault, every episode, and the false alarms among them."""

    findings: tuple[Finding, ...]
    false_alarms: tuple[Episode, ...]
    episodes: tuple[Episode, ...] = ()

    @property
    def detected(self) -> int:
        """How many faults were caught."""
        return sum(f.detected for f in self.findings)

    def line(self) -> str:
        """The summary line that scripts read: ``faults detected: X of Y; false alarms: N``."""
        return (
            f"faults detected: {self.detected} of {len(self.findings)}; "
            f"false alarms: {len(self.false_alarms)}"
        )


def score(faults: Sequence[Fault], alerts: Iterable[Mapping[str, Any]]) -> Score:
    """Match alert episodes to faults.

    Examples
    --------
    >>> f = Fault("lyon", "cnc-2", "bearing_wear", start=100, end=200)
    >>> hit = {"id": "1", "state": "firing", "site": "lyon", "asset": "cnc-2",
    ...        "rule": "anomaly", "started_at": "1970-01-01T00:00:00.000000150Z"}
    >>> noise = {**hit, "id": "2", "asset": "cnc-1"}
    >>> s = score([f], [hit, noise])
    >>> s.findings[0].delay, len(s.false_alarms), s.line()
    (50, 1, 'faults detected: 1 of 1; false alarms: 1')
    """
    found = episodes(alerts)
    findings = []
    for fault in faults:
        first = next((e for e in found if _covers(fault, e)), None)  # `found` is by firing time
        findings.append(
            Finding(fault, None, None)
            if first is None
            else Finding(fault, first.rule, first.fired - fault.start)
        )
    false_alarms = tuple(e for e in found if not any(_covers(f, e) for f in faults))
    return Score(tuple(findings), false_alarms, tuple(found))


def _covers(fault: Fault, episode: Episode) -> bool:
    """Whether the episode names the fault's asset (a site-wide alert names them all) in time."""
    if episode.site != fault.site or episode.asset not in (fault.asset, "*"):
        return False
    return fault.start <= episode.fired <= fault.end + GRACE_NS
