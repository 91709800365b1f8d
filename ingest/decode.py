"""Payload decoding and validation: one MQTT message to readings, or a specific rejection.

The contract is docs/design.md §2. A message is all or nothing: if any reading of a
batched array breaks the contract, the whole message becomes one dead letter (its raw bytes can
be fixed and replayed as they came). This runs once per message on the hot path, so it avoids
per-message allocations beyond the readings themselves: valid topics, kinds and metric names
are cached, and the slow classifying parse runs only when the fast parser fails.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.base import Reading
from ingest.errors import Reason, RejectedMessage
from ingest.timestamps import parse_ts
from ingest.topic import ID_PATTERN, ID_RULE, TopicTemplate

#: docs/design.md §2: a reading carries 1 to 64 metrics.
MAX_METRICS = 64
# Fields of a flat payload that are not metrics.
_RESERVED = frozenset(("ts", "seq", "kind", "metrics"))
# Names a metric cannot take: the telemetry tags and InfluxDB's own keys (``time`` and
# anything starting with "_"), which InfluxDB refuses or confuses with tags.
_TAKEN = frozenset(("site", "asset", "kind", "time"))
# Stands for a field the payload does not have (``"metrics": null`` is a shape error).
_ABSENT = object()
# Caches of validated names are bounded so that a flood of distinct garbage cannot grow memory.
_CACHE_LIMIT = 100_000


@dataclass(slots=True)
class Decoder:
    """Turns (topic, payload) into readings following the docs/design.md §2 payload contract.

    Parameters
    ----------
    template
        Where the topic carries site and asset.
    max_payload
        Largest accepted payload in bytes (docs/design.md §2: 64 KiB).
    max_future_ns
        How far ahead of the arrival time a ``ts`` may be (docs/design.md §2: 5 minutes).

    Examples
    --------
    >>> d = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    >>> now = 1_795_521_660_000_000_000  # arrival time, ns
    >>> d.decode("plant/s1/a1/telemetry", b'{"ts": 1795521600, "metrics": {"t": 61.5}}', now)
    [Reading(site='s1', asset='a1', kind=None, ts=1795521600000000000, metrics={'t': 61.5}, \
seq=None)]
    >>> d.decode("plant/s1/a1/telemetry", b'{"temp": 20, "on": true, "unit": "C"}', now)[0].metrics
    {'temp': 20.0, 'on': 1.0}
    >>> d.decode("plant/s1/a1/telemetry", b'{"metrics": {}}', now)
    Traceback (most recent call last):
    ...
    ingest.errors.RejectedMessage: no_metrics: a reading needs 1 to 64 metrics, got none
    """

    template: TopicTemplate
    max_payload: int = 65_536
    max_future_ns: int = 300 * 1_000_000_000
    _topics: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    _names: set[str] = field(default_factory=set, repr=False)
    _kinds: set[str] = field(default_factory=set, repr=False)

    def decode(self, topic: str, payload: bytes, arrival_ns: int) -> list[Reading]:
        """Decode one message; `arrival_ns` stands in for a missing ``ts``.

        Raises `RejectedMessage` with the specific reason when the message breaks the contract.
        """
        if len(payload) > self.max_payload:
            raise RejectedMessage(
                Reason.OVERSIZE,
                f"payload is {len(payload)} bytes, limit {self.max_payload} "
                "(the dead letter keeps the first ones)",
            )
        site_asset = self._topics.get(topic)
        if site_asset is None:
            site_asset = self.template.match(topic)
            if len(self._topics) >= _CACHE_LIMIT:
                self._topics.clear()
            self._topics[topic] = site_asset
        site, asset = site_asset
        doc = _parse_json(payload)
        if isinstance(doc, dict):
            return [self._reading(site, asset, doc, arrival_ns)]
        if isinstance(doc, list):
            if not doc:
                raise RejectedMessage(Reason.BAD_SHAPE, "empty array: send at least one reading")
            readings = []
            for i, item in enumerate(doc):
                if not isinstance(item, dict):
                    raise RejectedMessage(
                        Reason.BAD_SHAPE,
                        f"array item {i} is {_json_type(item)}, expected an object",
                    )
                try:
                    # Readings without ts keep their order and do not overwrite each other.
                    readings.append(self._reading(site, asset, item, arrival_ns + i))
                except RejectedMessage as exc:
                    raise RejectedMessage(exc.reason, f"array item {i}: {exc.detail}") from None
            return readings
        raise RejectedMessage(
            Reason.BAD_SHAPE, f"payload is {_json_type(doc)}, expected an object or an array"
        )

    def _reading(self, site: str, asset: str, doc: dict[str, Any], arrival_ns: int) -> Reading:
        get = doc.get
        raw_ts = get("ts")
        ts = arrival_ns if raw_ts is None else parse_ts(raw_ts)
        if ts > arrival_ns + self.max_future_ns:
            raise RejectedMessage(
                Reason.FUTURE_TIMESTAMP,
                f"ts {raw_ts!r} is {(ts - arrival_ns) / 1e9:.0f} s ahead of arrival "
                f"(limit {self.max_future_ns / 1e9:.0f} s): check the sensor's clock",
            )
        kind = get("kind")
        if kind is not None and (type(kind) is not str or kind not in self._kinds):
            self._check_kind(kind)
        seq = get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise RejectedMessage(Reason.BAD_SEQ, f"seq {seq!r} must be a non-negative integer")
        raw = get("metrics", _ABSENT)
        if raw is _ABSENT:
            metrics = self._flat_metrics(doc)
        elif type(raw) is dict:
            metrics = self._strict_metrics(raw)
        else:
            raise RejectedMessage(
                Reason.BAD_SHAPE, f"metrics is {_json_type(raw)}, expected an object"
            )
        return Reading(site, asset, kind, ts, metrics, seq)

    def _check_kind(self, kind: object) -> None:
        """Reject a ``kind`` that is no ID; remember a valid one (checked once, then cached)."""
        if not (isinstance(kind, str) and ID_PATTERN.fullmatch(kind)):
            raise RejectedMessage(
                Reason.BAD_KIND, f"kind {kind!r} must be a string matching {ID_RULE}"
            )
        if len(self._kinds) >= _CACHE_LIMIT:
            self._kinds.clear()
        self._kinds.add(kind)

    def _strict_metrics(self, raw: dict[str, Any]) -> dict[str, float]:
        """Validate a ``metrics`` object: every value must be a number.

        The parsed object becomes the reading's metrics, its ints and booleans turned into
        floats in place: no second dict per reading.
        """
        names = self._names
        for name, value in raw.items():
            # orjson yields only finite floats and ints within 64 bits (see _parse_json).
            kind = type(value)
            if kind is not float:
                if kind is int:
                    raw[name] = float(value)
                elif kind is bool:
                    raw[name] = 1.0 if value else 0.0
                else:
                    raise RejectedMessage(
                        Reason.BAD_METRIC_VALUE,
                        f"metric {name!r} is {_json_type(value)} {_short(value)}, "
                        "expected a number",
                    )
            if name not in names:
                self._check_name(name)
        _check_count(len(raw))
        return raw

    def _flat_metrics(self, doc: dict[str, Any]) -> dict[str, float]:
        """The numeric fields of a flat payload; the others (units, labels) are no metrics."""
        metrics: dict[str, float] = {}
        for name, value in doc.items():
            if name in _RESERVED or name in _TAKEN or name[:1] == "_":
                continue  # identity and bookkeeping fields are no metrics
            kind = type(value)
            if kind is float:
                pass
            elif kind is int:
                value = float(value)
            elif kind is bool:
                value = 1.0 if value else 0.0
            else:
                continue
            if name not in self._names:
                self._check_name(name)
            metrics[name] = value
        _check_count(len(metrics))
        return metrics

    def _check_name(self, name: str) -> None:
        """Reject a metric name that is reserved or no ID; remember a valid one."""
        if name in _TAKEN or name[:1] == "_":
            raise RejectedMessage(
                Reason.BAD_METRIC_NAME,
                f"metric name {name!r} is reserved (site, asset, kind, time and names "
                "starting with '_' belong to the storage schema)",
            )
        if not ID_PATTERN.fullmatch(name):
            raise RejectedMessage(
                Reason.BAD_METRIC_NAME,
                f"metric name {_short(name)} must match {ID_RULE}",
            )
        if len(self._names) >= _CACHE_LIMIT:
            self._names.clear()
        self._names.add(name)


def _check_count(count: int) -> None:
    """A reading carries 1 to `MAX_METRICS` metrics."""
    if not count:
        raise RejectedMessage(Reason.NO_METRICS, "a reading needs 1 to 64 metrics, got none")
    if count > MAX_METRICS:
        raise RejectedMessage(
            Reason.TOO_MANY_METRICS,
            f"a reading carries at most {MAX_METRICS} metrics, got {count}",
        )


def _parse_json(payload: bytes) -> Any:
    """Parse strict JSON fast; when that fails, find out why (UTF-8, non-finite, syntax).

    orjson refuses NaN, Infinity and numbers beyond a double, so a parsed document never
    holds a non-finite number. The stdlib parser, which accepts them, only classifies.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as fast_error:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RejectedMessage(
                Reason.BAD_UTF8, f"payload is not UTF-8 (byte {exc.start}: {exc.reason})"
            ) from None
        non_finite: list[str] = []

        def number(token: str) -> float:
            if math.isinf(float(token)):  # beyond a double: 1e400, or a 400-digit integer
                non_finite.append(_short(token))
            return 0.0

        with contextlib.suppress(ValueError, RecursionError):
            json.loads(text, parse_constant=non_finite.append, parse_float=number, parse_int=number)
        if non_finite:
            raise RejectedMessage(
                Reason.NON_FINITE,
                f"payload has the number {non_finite[0]}: only finite numbers are allowed",
            ) from None
        raise RejectedMessage(Reason.BAD_JSON, f"payload is not JSON: {fast_error}") from None


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
