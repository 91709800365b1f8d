"""Unit tests of the payload contract: `ingest.decode`, `ingest.timestamps`, `ingest.topic`."""

from __future__ import annotations

import random

import orjson
import pytest

from ingest.base import Reading
from ingest.decode import _CACHE_LIMIT, MAX_METRICS, Decoder
from ingest.errors import Reason, RejectedMessage, TopicTemplateError
from ingest.topic import TopicTemplate

TOPIC = "plant/s1/a1/telemetry"
# 2026-11-24T12:00:00Z, the docs/design.md §2 example reading's second.
T0_S = 1_795_521_600
T0 = T0_S * 1_000_000_000
# Arrival a minute after the example reading.
NOW = T0 + 60 * 1_000_000_000
SECOND = 1_000_000_000


@pytest.fixture
def decoder() -> Decoder:
    """Return a decoder of the default template and limits."""
    return Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))


def _doc(value: object) -> bytes:
    return orjson.dumps(value)


def _one(decoder: Decoder, payload: bytes, topic: str = TOPIC) -> Reading:
    (reading,) = decoder.decode(topic, payload, NOW)
    return reading


def _rejection(decoder: Decoder, payload: bytes, topic: str = TOPIC) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as info:
        decoder.decode(topic, payload, NOW)
    return info.value


# --- accepted forms -------------------------------------------------------------------------


def test_object_form_gives_one_reading_with_its_metrics(decoder: Decoder) -> None:
    """An object with `metrics` becomes one reading of the topic's site and asset."""
    payload = b'{"ts": "2026-11-24T12:00:00.125Z", "metrics": {"vibration_rms": 0.41, "t": 61.2}}'
    assert decoder.decode(TOPIC, payload, NOW) == [
        Reading("s1", "a1", None, T0 + 125_000_000, {"vibration_rms": 0.41, "t": 61.2})
    ]


def test_object_form_integers_become_floats(decoder: Decoder) -> None:
    """Integer metric values are stored as floats."""
    reading = _one(decoder, b'{"metrics": {"rpm": 1200}}')
    assert reading.metrics == {"rpm": 1200.0}
    assert type(reading.metrics["rpm"]) is float


def test_object_form_booleans_become_one_and_zero(decoder: Decoder) -> None:
    """Booleans inside `metrics` are the numbers 1.0 and 0.0."""
    reading = _one(decoder, b'{"metrics": {"on": true, "fault": false}}')
    assert reading.metrics == {"on": 1.0, "fault": 0.0}


def test_object_form_ignores_unknown_top_level_fields(decoder: Decoder) -> None:
    """Beside `metrics`, other top-level fields are not metrics."""
    reading = _one(decoder, b'{"metrics": {"t": 1.5}, "fw": "1.2.3", "extra": 7}')
    assert reading.metrics == {"t": 1.5}


def test_flat_payload_numeric_fields_are_metrics(decoder: Decoder) -> None:
    """In a flat object, numeric fields other than ts and seq are the metrics."""
    reading = _one(decoder, b'{"ts": 1795521600, "seq": 7, "temp": 20, "pressure": 1.5}')
    assert reading.metrics == {"temp": 20.0, "pressure": 1.5}
    assert (reading.ts, reading.seq) == (T0, 7)


def test_flat_payload_ignores_string_fields(decoder: Decoder) -> None:
    """In a flat object, strings (units, labels) are skipped, not rejected."""
    reading = _one(decoder, b'{"temp": 20.5, "unit": "C", "label": "north"}')
    assert reading.metrics == {"temp": 20.5}


def test_flat_payload_booleans_become_one_and_zero(decoder: Decoder) -> None:
    """In a flat object, booleans are metrics worth 1.0 and 0.0."""
    reading = _one(decoder, b'{"temp": 20.5, "on": true, "alarm": false}')
    assert reading.metrics == {"temp": 20.5, "on": 1.0, "alarm": 0.0}


def test_flat_payload_kind_is_the_kind_not_a_metric(decoder: Decoder) -> None:
    """A `kind` string in a flat object names the asset kind."""
    reading = _one(decoder, b'{"kind": "cnc-mill", "temp": 20.5}')
    assert (reading.kind, reading.metrics) == ("cnc-mill", {"temp": 20.5})


def test_array_payload_keeps_order_and_each_elements_ts(decoder: Decoder) -> None:
    """A batched array gives one reading per element, in order, each with its own ts."""
    payload = _doc([{"ts": T0_S + 2, "metrics": {"t": 2.0}}, {"ts": T0_S + 1, "t": 1.0}])
    readings = decoder.decode(TOPIC, payload, NOW)
    assert [(r.ts, r.metrics) for r in readings] == [
        (T0 + 2 * SECOND, {"t": 2.0}),
        (T0 + 1 * SECOND, {"t": 1.0}),
    ]


def test_array_elements_without_ts_get_arrival_time_plus_index(decoder: Decoder) -> None:
    """Array elements without ts are stamped arrival + index, so they do not overwrite."""
    payload = _doc([{"t": 0.0}, {"t": 1.0}, {"ts": T0_S, "t": 2.0}, {"t": 3.0}])
    assert [r.ts for r in decoder.decode(TOPIC, payload, NOW)] == [NOW, NOW + 1, T0, NOW + 3]


def test_missing_ts_means_arrival_time(decoder: Decoder) -> None:
    """A reading without ts takes the arrival time."""
    assert _one(decoder, b'{"metrics": {"t": 1.0}}').ts == NOW


def test_null_ts_means_arrival_time(decoder: Decoder) -> None:
    """A ts of null counts as absent."""
    assert _one(decoder, b'{"ts": null, "metrics": {"t": 1.0}}').ts == NOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T12:00:00Z", T0),
        ("2026-11-24T13:30:00+01:30", T0),
        ("2026-11-24T07:00:00-05:00", T0),
        ("2026-11-24T12:00:00.1Z", T0 + 100_000_000),
        ("2026-11-24T12:00:00.12Z", T0 + 120_000_000),
        ("2026-11-24T12:00:00.123Z", T0 + 123_000_000),
        ("2026-11-24T12:00:00.1234Z", T0 + 123_400_000),
        ("2026-11-24T12:00:00.12345Z", T0 + 123_450_000),
        ("2026-11-24T12:00:00.123456Z", T0 + 123_456_000),
        ("2026-11-24T12:00:00.1234567Z", T0 + 123_456_700),
        ("2026-11-24T12:00:00.12345678Z", T0 + 123_456_780),
        ("2026-11-24T12:00:00.123456789Z", T0 + 123_456_789),
        ("2026-11-24T12:00:00.000000001+00:00", T0 + 1),
        ("2026-11-24t12:00:00Z", T0),
        ("2026-11-24T12:00:00z", T0),
        ("2026-11-24 12:00:00Z", T0),
        # 2016-12-31T23:59:60Z was a real leap second; it maps onto the next second.
        ("2016-12-31T23:59:60Z", 1_483_228_800 * SECOND),
    ],
    ids=[
        "zulu",
        "positive-offset",
        "negative-offset",
        "fraction-1-digit",
        "fraction-2-digits",
        "fraction-3-digits",
        "fraction-4-digits",
        "fraction-5-digits",
        "fraction-6-digits",
        "fraction-7-digits",
        "fraction-8-digits",
        "fraction-9-digits",
        "one-nanosecond-with-offset",
        "lowercase-t",
        "lowercase-z",
        "space-separator",
        "leap-second-60",
    ],
)
def test_rfc3339_ts_parses_to_exact_nanoseconds(decoder: Decoder, text: str, expected: int) -> None:
    """Every RFC 3339 form docs/design.md §2 accepts gives the exact nanosecond."""
    assert _one(decoder, _doc({"ts": text, "metrics": {"t": 1.0}})).ts == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1795521600", T0),
        (b"1795521600.125", T0 + 125_000_000),
        (b"1795521600.123456", T0 + 123_456_000),
        (b"1795521600125", T0 + 125_000_000),
        (b"1795521600125.5", T0 + 125_500_000),
        (b"1795521600125001", T0 + 125_001_000),
        (b"1795521600125000001", T0 + 125_000_001),
        (b"1795521600125000192.0", T0 + 125_000_192),
    ],
    ids=[
        "seconds-int",
        "seconds-float",
        "seconds-float-microseconds",
        "milliseconds-int",
        "milliseconds-float",
        "microseconds-int",
        "nanoseconds-int",
        "nanoseconds-float",
    ],
)
def test_epoch_ts_parses_to_exact_nanoseconds(decoder: Decoder, raw: bytes, expected: int) -> None:
    """Epoch numbers are read as s, ms, µs or ns by magnitude, to the exact nanosecond."""
    payload = b'{"ts": ' + raw + b', "metrics": {"t": 1.0}}'
    assert _one(decoder, payload).ts == expected


def test_ts_exactly_at_the_future_limit_is_accepted(decoder: Decoder) -> None:
    """A ts exactly max_future ahead of arrival is still accepted."""
    limit = NOW + decoder.max_future_ns
    assert _one(decoder, _doc({"ts": limit, "metrics": {"t": 1.0}})).ts == limit


def test_ts_one_nanosecond_past_the_future_limit_is_rejected(decoder: Decoder) -> None:
    """A ts 1 ns beyond max_future is a future timestamp."""
    payload = _doc({"ts": NOW + decoder.max_future_ns + 1, "metrics": {"t": 1.0}})
    assert _rejection(decoder, payload).reason is Reason.FUTURE_TIMESTAMP


def test_any_age_in_the_past_is_accepted(decoder: Decoder) -> None:
    """Old timestamps (replay, backfill) are accepted, down to the epoch itself."""
    assert _one(decoder, b'{"ts": "1970-01-01T00:00:00Z", "metrics": {"t": 1.0}}').ts == 0


def test_seq_is_kept(decoder: Decoder) -> None:
    """A non-negative integer seq travels with the reading."""
    assert _one(decoder, b'{"seq": 0, "metrics": {"t": 1.0}}').seq == 0
    assert _one(decoder, b'{"seq": 18446744073709551615, "t": 1.0}').seq == 2**64 - 1


def test_kind_is_kept(decoder: Decoder) -> None:
    """A valid kind travels with the reading."""
    assert _one(decoder, b'{"kind": "cnc-mill", "metrics": {"t": 1.0}}').kind == "cnc-mill"


def test_64_metrics_are_accepted(decoder: Decoder) -> None:
    """A reading may carry exactly 64 metrics."""
    metrics = {f"m{i}": float(i) for i in range(MAX_METRICS)}
    assert _one(decoder, _doc({"metrics": metrics})).metrics == metrics


def test_payload_of_exactly_max_payload_bytes_is_accepted(decoder: Decoder) -> None:
    """A payload of exactly max_payload bytes is not oversize."""
    body = b'{"metrics": {"t": 1.0}}'
    payload = body + b" " * (decoder.max_payload - len(body))
    assert len(payload) == 65_536
    assert _one(decoder, payload).metrics == {"t": 1.0}


def test_ids_of_64_characters_are_accepted(decoder: Decoder) -> None:
    """Site, asset, kind and metric names may be 64 characters long."""
    site, asset, kind, name = "s" * 64, "a" * 64, "k" * 64, "m" * 64
    reading = _one(
        decoder, _doc({"kind": kind, "metrics": {name: 1.0}}), f"plant/{site}/{asset}/telemetry"
    )
    assert (reading.site, reading.asset, reading.kind, list(reading.metrics)) == (
        site,
        asset,
        kind,
        [name],
    )


def test_ids_may_use_every_allowed_character(decoder: Decoder) -> None:
    """IDs may mix letters, digits, '_', '.' and '-'."""
    reading = _one(
        decoder, b'{"metrics": {"Temp_1.max-C": 1.0}}', "plant/Berlin_1.a-2/X.9_z-/telemetry"
    )
    assert (reading.site, reading.asset) == ("Berlin_1.a-2", "X.9_z-")
    assert list(reading.metrics) == ["Temp_1.max-C"]


# --- rejections -----------------------------------------------------------------------------

_65_METRICS = _doc({"metrics": {f"m{i}": 1.0 for i in range(MAX_METRICS + 1)}})
_65_FLAT = _doc({f"m{i}": 1.0 for i in range(MAX_METRICS + 1)})
_OVERSIZE = _doc({"metrics": {"t": 1.0}, "pad": "x" * (70 * 1024)})
_NOISE = random.Random(20261124).randbytes(256)
_OK = b'{"metrics": {"t": 1.0}}'


def _m(value: str) -> bytes:
    """A payload whose only metric `t` has the raw JSON `value`."""
    return b'{"metrics": {"t": ' + value.encode() + b"}}"


def _ts(value: str) -> bytes:
    """A valid payload whose `ts` is the raw JSON `value`."""
    return b'{"ts": ' + value.encode() + b', "metrics": {"t": 1.0}}'


# (id, topic, payload, reason)
_REJECTIONS: list[tuple[str, str, bytes, Reason]] = [
    # not JSON at all
    ("not-json", TOPIC, b"temperature=20", Reason.BAD_JSON),
    ("truncated-json", TOPIC, b'{"metrics": {"t": 1.0', Reason.BAD_JSON),
    ("empty-payload", TOPIC, b"", Reason.BAD_JSON),
    ("trailing-garbage", TOPIC, _OK + b"}", Reason.BAD_JSON),
    ("single-quotes", TOPIC, b"{'metrics': {'t': 1.0}}", Reason.BAD_JSON),
    ("nested-open-arrays", TOPIC, b"[" * 60_000, Reason.BAD_JSON),
    ("binary-noise", TOPIC, _NOISE, Reason.BAD_UTF8),
    (
        "invalid-utf8-in-string",
        TOPIC,
        b'{"metrics": {"t": 1.0}, "unit": "\xff\xfe"}',
        Reason.BAD_UTF8,
    ),
    # wrong shape
    ("scalar-number", TOPIC, b"42", Reason.BAD_SHAPE),
    ("scalar-string", TOPIC, b'"t=1.0"', Reason.BAD_SHAPE),
    ("scalar-null", TOPIC, b"null", Reason.BAD_SHAPE),
    ("scalar-true", TOPIC, b"true", Reason.BAD_SHAPE),
    ("empty-array", TOPIC, b"[]", Reason.BAD_SHAPE),
    ("array-with-number", TOPIC, b'[{"t": 1.0}, 2]', Reason.BAD_SHAPE),
    ("array-with-null", TOPIC, b'[{"t": 1.0}, null]', Reason.BAD_SHAPE),
    ("nested-balanced-arrays", TOPIC, b"[" * 500 + b"]" * 500, Reason.BAD_SHAPE),
    ("metrics-string", TOPIC, b'{"metrics": "t=1.0"}', Reason.BAD_SHAPE),
    ("metrics-list", TOPIC, b'{"metrics": [1.0, 2.0]}', Reason.BAD_SHAPE),
    ("metrics-null", TOPIC, b'{"metrics": null}', Reason.BAD_SHAPE),
    # metric values
    ("value-string", TOPIC, _m('"1.0"'), Reason.BAD_METRIC_VALUE),
    ("value-null", TOPIC, _m("null"), Reason.BAD_METRIC_VALUE),
    ("value-list", TOPIC, _m("[1.0]"), Reason.BAD_METRIC_VALUE),
    ("value-object", TOPIC, _m('{"v": 1.0}'), Reason.BAD_METRIC_VALUE),
    ("value-string-NaN", TOPIC, _m('"NaN"'), Reason.BAD_METRIC_VALUE),
    ("value-string-Infinity", TOPIC, _m('"Infinity"'), Reason.BAD_METRIC_VALUE),
    ("value-bare-NaN", TOPIC, _m("NaN"), Reason.NON_FINITE),
    ("value-bare-Infinity", TOPIC, _m("Infinity"), Reason.NON_FINITE),
    ("value-bare-minus-Infinity", TOPIC, _m("-Infinity"), Reason.NON_FINITE),
    ("value-1e400", TOPIC, _m("1e400"), Reason.NON_FINITE),
    ("value-minus-1e400", TOPIC, _m("-1e400"), Reason.NON_FINITE),
    ("value-10-to-400", TOPIC, _m("1" + "0" * 400), Reason.NON_FINITE),
    ("flat-bare-NaN", TOPIC, b'{"temp": NaN}', Reason.NON_FINITE),
    # how many metrics
    ("empty-metrics", TOPIC, b'{"metrics": {}}', Reason.NO_METRICS),
    ("flat-without-numbers", TOPIC, b'{"unit": "C", "label": "north"}', Reason.NO_METRICS),
    ("flat-only-reserved", TOPIC, b'{"ts": 1795521600, "seq": 3, "kind": "k"}', Reason.NO_METRICS),
    ("empty-object", TOPIC, b"{}", Reason.NO_METRICS),
    ("65-metrics", TOPIC, _65_METRICS, Reason.TOO_MANY_METRICS),
    ("65-flat-metrics", TOPIC, _65_FLAT, Reason.TOO_MANY_METRICS),
    # metric names
    ("name-space", TOPIC, b'{"metrics": {"spindle temp": 1.0}}', Reason.BAD_METRIC_NAME),
    ("name-slash", TOPIC, b'{"metrics": {"temp/c": 1.0}}', Reason.BAD_METRIC_NAME),
    ("name-65-chars", TOPIC, _doc({"metrics": {"m" * 65: 1.0}}), Reason.BAD_METRIC_NAME),
    ("name-empty", TOPIC, b'{"metrics": {"": 1.0}}', Reason.BAD_METRIC_NAME),
    ("name-unicode", TOPIC, _doc({"metrics": {"température": 1.0}}), Reason.BAD_METRIC_NAME),
    ("name-lone-surrogate", TOPIC, b'{"metrics": {"\\ud800": 1.0}}', Reason.BAD_JSON),
    ("flat-name-space", TOPIC, b'{"spindle temp": 1.0}', Reason.BAD_METRIC_NAME),
    # size
    ("oversize-70KiB", TOPIC, _OVERSIZE, Reason.OVERSIZE),
    # IDs in the topic
    ("site-space", "plant/s 1/a1/telemetry", _OK, Reason.BAD_ID),
    ("asset-star", "plant/s1/a*/telemetry", _OK, Reason.BAD_ID),
    ("site-dollar", "plant/$s1/a1/telemetry", _OK, Reason.BAD_ID),
    ("asset-65-chars", f"plant/s1/{'a' * 65}/telemetry", _OK, Reason.BAD_ID),
    ("site-empty-level", "plant//a1/telemetry", _OK, Reason.BAD_ID),
    ("asset-empty-level", "plant/s1//telemetry", _OK, Reason.BAD_ID),
    ("site-plus-wildcard", "plant/+/a1/telemetry", _OK, Reason.BAD_ID),
    ("asset-hash-wildcard", "plant/s1/#/telemetry", _OK, Reason.BAD_ID),
    ("asset-unicode", "plant/s1/fräse/telemetry", _OK, Reason.BAD_ID),
    # topic shape
    ("topic-too-few-levels", "plant/s1/telemetry", _OK, Reason.BAD_TOPIC),
    ("topic-too-many-levels", "plant/s1/a1/telemetry/extra", _OK, Reason.BAD_TOPIC),
    ("topic-trailing-slash", "plant/s1/a1/telemetry/", _OK, Reason.BAD_TOPIC),
    ("topic-wrong-first-level", "factory/s1/a1/telemetry", _OK, Reason.BAD_TOPIC),
    ("topic-wrong-last-level", "plant/s1/a1/status", _OK, Reason.BAD_TOPIC),
    ("topic-hash-ending", "plant/s1/#", _OK, Reason.BAD_TOPIC),
    ("topic-plus-literal-level", "+/s1/a1/telemetry", _OK, Reason.BAD_TOPIC),
    ("topic-empty", "", _OK, Reason.BAD_TOPIC),
    # timestamps
    (
        "ts-10-minutes-ahead",
        TOPIC,
        _ts(str((NOW + 600 * SECOND) // SECOND)),
        Reason.FUTURE_TIMESTAMP,
    ),
    ("ts-rfc3339-ahead", TOPIC, _ts('"2026-11-24T12:11:00Z"'), Reason.FUTURE_TIMESTAMP),
    ("ts-negative-epoch", TOPIC, _ts("-1"), Reason.BAD_TIMESTAMP),
    ("ts-negative-float-epoch", TOPIC, _ts("-1795521600.5"), Reason.BAD_TIMESTAMP),
    ("ts-before-1970-by-offset", TOPIC, _ts('"1970-01-01T00:00:00+00:01"'), Reason.BAD_TIMESTAMP),
    ("ts-without-zone", TOPIC, _ts('"2026-11-24T12:00:00"'), Reason.BAD_TIMESTAMP),
    ("ts-offset-without-colon", TOPIC, _ts('"2026-11-24T12:00:00+0100"'), Reason.BAD_TIMESTAMP),
    ("ts-date-only", TOPIC, _ts('"2026-11-24"'), Reason.BAD_TIMESTAMP),
    (
        "ts-fraction-10-digits",
        TOPIC,
        _ts('"2026-11-24T12:00:00.1234567891Z"'),
        Reason.BAD_TIMESTAMP,
    ),
    ("ts-february-30", TOPIC, _ts('"2026-02-30T00:00:00Z"'), Reason.BAD_TIMESTAMP),
    ("ts-month-13", TOPIC, _ts('"2026-13-01T00:00:00Z"'), Reason.BAD_TIMESTAMP),
    ("ts-hour-24", TOPIC, _ts('"2026-11-24T24:00:00Z"'), Reason.BAD_TIMESTAMP),
    ("ts-second-61", TOPIC, _ts('"2026-11-24T12:00:61Z"'), Reason.BAD_TIMESTAMP),
    ("ts-boolean", TOPIC, _ts("true"), Reason.BAD_TIMESTAMP),
    ("ts-list", TOPIC, _ts("[1795521600]"), Reason.BAD_TIMESTAMP),
    ("ts-object", TOPIC, _ts('{"s": 1795521600}'), Reason.BAD_TIMESTAMP),
    ("ts-string-NaN", TOPIC, _ts('"NaN"'), Reason.BAD_TIMESTAMP),
    ("ts-bare-NaN", TOPIC, _ts("NaN"), Reason.NON_FINITE),
    ("ts-1e400", TOPIC, _ts("1e400"), Reason.NON_FINITE),
    ("ts-numeric-string", TOPIC, _ts('"1795521600"'), Reason.BAD_TIMESTAMP),
    # kind
    ("kind-number", TOPIC, b'{"kind": 3, "metrics": {"t": 1.0}}', Reason.BAD_KIND),
    ("kind-boolean", TOPIC, b'{"kind": true, "t": 1.0}', Reason.BAD_KIND),
    ("kind-space", TOPIC, b'{"kind": "cnc mill", "metrics": {"t": 1.0}}', Reason.BAD_KIND),
    ("kind-empty", TOPIC, b'{"kind": "", "metrics": {"t": 1.0}}', Reason.BAD_KIND),
    ("kind-65-chars", TOPIC, _doc({"kind": "k" * 65, "metrics": {"t": 1.0}}), Reason.BAD_KIND),
    ("kind-list", TOPIC, b'{"kind": ["cnc-mill"], "metrics": {"t": 1.0}}', Reason.BAD_KIND),
    ("kind-object", TOPIC, b'{"kind": {"k": "cnc"}, "t": 1.0}', Reason.BAD_KIND),
    # seq
    ("seq-negative", TOPIC, b'{"seq": -1, "metrics": {"t": 1.0}}', Reason.BAD_SEQ),
    ("seq-float", TOPIC, b'{"seq": 1.0, "metrics": {"t": 1.0}}', Reason.BAD_SEQ),
    ("seq-string", TOPIC, b'{"seq": "1", "metrics": {"t": 1.0}}', Reason.BAD_SEQ),
    ("seq-boolean", TOPIC, b'{"seq": true, "metrics": {"t": 1.0}}', Reason.BAD_SEQ),
    # all or nothing
    (
        "one-bad-item-in-array",
        TOPIC,
        b'[{"metrics": {"t": 1.0}}, {"metrics": {"t": "hot"}}, {"metrics": {"t": 3.0}}]',
        Reason.BAD_METRIC_VALUE,
    ),
]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [case[1:] for case in _REJECTIONS],
    ids=[case[0] for case in _REJECTIONS],
)
def test_rejects_with_specific_reason(
    decoder: Decoder, topic: str, payload: bytes, reason: Reason
) -> None:
    """Each malformed message is rejected with its own specific reason."""
    assert _rejection(decoder, payload, topic).reason is reason


def test_rejection_table_is_broad() -> None:
    """The rejection table keeps covering at least 35 distinct messages and every reason."""
    assert len({(topic, payload) for _, topic, payload, _ in _REJECTIONS}) >= 35
    # internal_error is the pipeline's, for a decoder that crashes (tests/ingest/test_pipeline)
    assert {reason for *_, reason in _REJECTIONS} == set(Reason) - {Reason.INTERNAL_ERROR}


def test_one_bad_item_rejects_the_whole_array_naming_its_index(decoder: Decoder) -> None:
    """One bad element rejects the whole message, and the detail names the item index."""
    payload = b'[{"t": 1.0}, {"t": 2.0}, {"metrics": {"t": "hot"}}]'
    exc = _rejection(decoder, payload)
    assert exc.reason is Reason.BAD_METRIC_VALUE
    assert exc.detail.startswith("array item 2: ")


def test_non_object_array_item_detail_names_its_index(decoder: Decoder) -> None:
    """An array element that is no object is named by its index."""
    assert "array item 1 is a number" in _rejection(decoder, b'[{"t": 1.0}, 5]').detail


def test_deeply_nested_arrays_are_rejected_without_crashing() -> None:
    """100,000 nested '[' (with the size limit lifted) are a rejection, not a crash."""
    big = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"), max_payload=1 << 20)
    for payload in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000):
        assert _rejection(big, payload).reason in {Reason.BAD_JSON, Reason.BAD_SHAPE}


@pytest.mark.parametrize(
    ("topic", "payload", "quoted"),
    [
        (TOPIC, _m('"hot"'), "'hot'"),
        (TOPIC, b'{"metrics": {"spindle temp": 1.0}}', "'spindle temp'"),
        ("plant/s 1/a1/telemetry", _OK, "'s 1'"),
        ("plant/s1/a1/status", _OK, "'plant/s1/a1/status'"),
        (TOPIC, _ts('"2026-02-30T00:00:00Z"'), "'2026-02-30T00:00:00Z'"),
        (TOPIC, _ts('"2026-11-24 12:00"'), "'2026-11-24 12:00'"),
        (TOPIC, b'{"kind": "cnc mill", "t": 1.0}', "'cnc mill'"),
        (TOPIC, b'{"seq": -5, "t": 1.0}', "-5"),
        (TOPIC, _m("NaN"), "NaN"),
        (TOPIC, _OVERSIZE, str(len(_OVERSIZE))),
    ],
    ids=[
        "metric-value",
        "metric-name",
        "site-id",
        "topic",
        "calendar-date",
        "ts-format",
        "kind",
        "seq",
        "non-finite",
        "oversize",
    ],
)
def test_detail_quotes_the_offending_value(
    decoder: Decoder, topic: str, payload: bytes, quoted: str
) -> None:
    """The rejection detail quotes the value that broke the contract."""
    assert quoted in _rejection(decoder, payload, topic).detail


def test_rejection_message_starts_with_the_reason(decoder: Decoder) -> None:
    """str(RejectedMessage) is '<reason>: <detail>'."""
    exc = _rejection(decoder, b'{"metrics": {}}')
    assert str(exc) == f"no_metrics: {exc.detail}"


@pytest.mark.parametrize(
    ("payload", "reasons"),
    [
        (b'{"metrics": {"t": 1.0}, "note": NaN}', {Reason.NON_FINITE}),
        (b'{"metrics": {"t": 1.0}, "cal": 1e400}', {Reason.NON_FINITE}),
        (b'{"t": 1.0, "history": [Infinity]}', {Reason.NON_FINITE}),
        (b'{"t": 1.0, "label": "\\ud800"}', {Reason.BAD_JSON}),
    ],
    ids=["nan-beside-metrics", "1e400-beside-metrics", "infinity-in-flat-list", "lone-surrogate"],
)
def test_rejects_non_json_in_fields_that_are_not_metrics(
    decoder: Decoder, payload: bytes, reasons: set[Reason]
) -> None:
    """A payload that is not strict JSON is rejected even where the bad token is not a metric."""
    assert _rejection(decoder, payload).reason in reasons


def test_rejects_rfc3339_with_non_ascii_digits(decoder: Decoder) -> None:
    """RFC 3339 digits are ASCII; Arabic-Indic digits are a bad timestamp."""
    payload = _doc({"ts": "٢٠٢٦-11-24T12:00:00Z", "metrics": {"t": 1.0}})
    assert _rejection(decoder, payload).reason is Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("offset", ["+24:00", "+99:99", "-00:60"], ids=["h24", "h99m99", "m60"])
def test_rejects_rfc3339_offset_out_of_range(decoder: Decoder, offset: str) -> None:
    """An offset beyond 23:59 is not RFC 3339 and is a bad timestamp."""
    payload = _doc({"ts": f"2026-11-24T10:00:00{offset}", "metrics": {"t": 1.0}})
    assert _rejection(decoder, payload).reason is Reason.BAD_TIMESTAMP


# --- topic templates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "plant/{asset}/telemetry",
        "plant/{site}/telemetry",
        "plant/{site}/{site}/{asset}",
        "plant/{site}/{asset}/{asset}",
        "plant/x{site}/{asset}",
        "plant/{site}/{asset}.raw",
        "plant/{site}/{asset}/{metric}",
        "plant/+/{site}/{asset}",
        "plant/{site}/{asset}/#",
        "$SYS/{site}/{asset}",
    ],
    ids=[
        "no-site",
        "no-asset",
        "site-twice",
        "asset-twice",
        "partial-level-site",
        "partial-level-asset",
        "unknown-placeholder",
        "plus-wildcard",
        "hash-wildcard",
        "dollar-first-level",
    ],
)
def test_parse_refuses_unworkable_templates(template: str) -> None:
    """A template must hold {site} and {asset} once each as whole levels, and no wildcards."""
    with pytest.raises(TopicTemplateError, match="topic template"):
        TopicTemplate.parse(template)


def test_template_error_is_a_value_error() -> None:
    """TopicTemplateError is a ValueError, so settings validation reports it."""
    with pytest.raises(ValueError, match=r"\{site\}"):
        TopicTemplate.parse("plant/{asset}")


def test_custom_template_maps_site_and_asset_by_position() -> None:
    """In factories/{asset}/at/{site} the asset is level 1 and the site level 3."""
    template = TopicTemplate.parse("factories/{asset}/at/{site}")
    assert template.match("factories/mill-3/at/berlin") == ("berlin", "mill-3")


def test_decoder_uses_custom_template_positions() -> None:
    """A decoder of a custom template reads site and asset from their own levels."""
    decoder = Decoder(TopicTemplate.parse("factories/{asset}/at/{site}"))
    reading = _one(decoder, _OK, "factories/mill-3/at/berlin")
    assert (reading.site, reading.asset) == ("berlin", "mill-3")


def test_custom_template_literal_levels_must_match() -> None:
    """A topic whose literal level differs from the custom template is a bad topic."""
    template = TopicTemplate.parse("factories/{asset}/at/{site}")
    with pytest.raises(RejectedMessage) as info:
        template.match("factories/mill-3/in/berlin")
    assert info.value.reason is Reason.BAD_TOPIC


@pytest.mark.parametrize(
    ("template", "subscription"),
    [
        ("plant/{site}/{asset}/telemetry", "plant/+/+/telemetry"),
        ("factories/{asset}/at/{site}", "factories/+/at/+"),
        ("{site}/{asset}", "+/+"),
    ],
    ids=["default", "custom", "bare"],
)
def test_subscription_replaces_placeholders_with_plus(template: str, subscription: str) -> None:
    """The subscription is the template with {site} and {asset} as '+'."""
    assert TopicTemplate.parse(template).subscription == subscription


def test_topic_builds_a_topic_that_matches_back() -> None:
    """topic(site, asset) builds the concrete topic that match() reads back."""
    template = TopicTemplate.parse("factories/{asset}/at/{site}")
    topic = template.topic("berlin", "mill-3")
    assert topic == "factories/mill-3/at/berlin"
    assert template.match(topic) == ("berlin", "mill-3")


# --- caches ---------------------------------------------------------------------------------


def test_topic_cache_stays_within_its_limit(decoder: Decoder) -> None:
    """Decoding 200,000 distinct valid topics never grows the topic cache past its limit."""
    decode, payload, largest = decoder.decode, b'{"t": 1.0}', 0
    for i in range(200_000):
        decode(f"plant/s{i}/a/telemetry", payload, NOW)
        largest = max(largest, len(decoder._topics))
    assert largest == _CACHE_LIMIT


def test_metric_name_cache_stays_within_its_limit(decoder: Decoder) -> None:
    """Decoding 200,000 distinct metric names never grows the name cache past its limit."""
    largest = 0
    for i in range(200_000 // MAX_METRICS):
        payload = _doc({"metrics": {f"m{i}_{j}": 1.0 for j in range(MAX_METRICS)}})
        decoder.decode(TOPIC, payload, NOW)
        largest = max(largest, len(decoder._names))
    assert 0 < largest <= _CACHE_LIMIT


def test_cached_topic_still_decodes_to_the_same_ids(decoder: Decoder) -> None:
    """A topic served from the cache gives the same site and asset as the first time."""
    first = _one(decoder, _OK, "plant/s9/a9/telemetry")
    again = _one(decoder, _OK, "plant/s9/a9/telemetry")
    assert (first.site, first.asset) == (again.site, again.asset) == ("s9", "a9")


@pytest.mark.parametrize("name", ["site", "asset", "kind", "time", "_field", "_measurement"])
def test_metric_names_of_the_storage_schema_are_refused(decoder: Decoder, name: str) -> None:
    """A metric may not be named like a tag or an InfluxDB key: InfluxDB would refuse it."""
    payload = _doc({"metrics": {name: 1.0, "t": 2.0}})
    rejection = _rejection(decoder, payload)
    assert rejection.reason is Reason.BAD_METRIC_NAME
    assert "reserved" in rejection.detail


def test_flat_payload_skips_identity_fields(decoder: Decoder) -> None:
    """A flat payload's site, asset, time and _-fields are not metrics; the rest are."""
    payload = b'{"site": 3, "asset": 4, "time": 5, "_id": 6, "temp": 21.5}'
    (reading,) = decoder.decode(TOPIC, payload, NOW)
    assert reading.metrics == {"temp": 21.5}
