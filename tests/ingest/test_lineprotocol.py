"""Unit tests of InfluxDB line protocol formatting (`ingest.lineprotocol`)."""

from __future__ import annotations

import re

import pytest

from ingest import lineprotocol
from ingest.base import Batch, Point, Reading
from ingest.decode import Decoder
from ingest.lineprotocol import batch_lines, point_line, reading_line
from ingest.topic import TopicTemplate

# An InfluxDB float field value: decimal digits with an optional fraction and exponent, and no
# `i`/`u` suffix (which would make it an integer).
_INFLUX_FLOAT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _field_text(line: str, name: str) -> str:
    """The raw text of field `name` in a line without escaped spaces."""
    fields = line.split(" ")[1]
    return dict(item.split("=", 1) for item in fields.split(","))[name]


def test_reading_line_with_kind_has_three_tags() -> None:
    """A reading with a kind is tagged site, asset and kind, in that order."""
    line = reading_line(Reading("berlin-1", "cnc-07", "cnc-mill", 1_000, {"t": 61.2}))
    assert line == "telemetry,site=berlin-1,asset=cnc-07,kind=cnc-mill t=61.2 1000"


def test_reading_line_without_kind_leaves_the_tag_out() -> None:
    """A reading without a kind has no kind tag at all."""
    line = reading_line(Reading("s1", "a1", None, 5, {"t": 1.5, "rpm": 1200.0}))
    assert line == "telemetry,site=s1,asset=a1 t=1.5,rpm=1200.0 5"


def test_reading_line_keeps_metric_order() -> None:
    """Fields follow the order of the reading's metrics."""
    line = reading_line(Reading("s1", "a1", None, 5, {"z": 1.0, "a": 2.0, "m": 3.0}))
    assert line.split(" ")[1] == "z=1.0,a=2.0,m=3.0"


def test_decoded_integer_metric_keeps_a_decimal_point() -> None:
    """An integer sent by a sensor is written as a float (`1.0`), never as an Influx integer."""
    decoder = Decoder(TopicTemplate.parse("plant/{site}/{asset}/telemetry"))
    (reading,) = decoder.decode("plant/s1/a1/telemetry", b'{"n": 1, "on": true}', 7)
    assert reading_line(reading) == "telemetry,site=s1,asset=a1 n=1.0,on=1.0 7"


@pytest.mark.parametrize(
    "value",
    [1e20, 1e-7, -1e-7, 1.7976931348623157e308, 5e-324, 123456789.0, 0.1 + 0.2, -0.0, 0.0],
    ids=[
        "1e20",
        "1e-7",
        "minus-1e-7",
        "max-double",
        "min-subnormal",
        "large-int",
        "0.3",
        "-0",
        "0",
    ],
)
def test_reading_floats_are_valid_influx_floats_that_round_trip(value: float) -> None:
    """Every finite float is written as a valid Influx float that parses back to itself."""
    text = _field_text(reading_line(Reading("s", "a", None, 1, {"v": value})), "v")
    assert _INFLUX_FLOAT.fullmatch(text), text
    assert float(text) == value


def test_point_line_writes_string_bool_and_float_fields() -> None:
    """String fields are quoted, booleans are true/false and numbers are floats."""
    point = Point(
        "anomaly",
        {"site": "s1", "asset": "a1", "detector": "hst"},
        {"score": 0.93, "anomalous": True, "warming_up": False, "top_metric": "t", "n": 2},
        9,
    )
    assert point_line(point) == (
        "anomaly,site=s1,asset=a1,detector=hst "
        'score=0.93,anomalous=true,warming_up=false,top_metric="t",n=2.0 9'
    )


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("temp high", r"temp\ high"),
        ("a,b", r"a\,b"),
        ("x=1", r"x\=1"),
        ("a, b=c", r"a\,\ b\=c"),
    ],
    ids=["space", "comma", "equals", "all-three"],
)
def test_point_tag_values_escape_space_comma_and_equals(value: str, escaped: str) -> None:
    """Spaces, commas and equals signs in tag values are backslash-escaped."""
    line = point_line(Point("alert", {"rule": value}, {"value": 1.0}, 1))
    assert line == f"alert,rule={escaped} value=1.0 1"


def test_point_tag_and_field_keys_are_escaped() -> None:
    """Tag keys and field keys are escaped like tag values."""
    line = point_line(Point("alert", {"my tag": "v"}, {"a=b": 1.0}, 1))
    assert line == r"alert,my\ tag=v a\=b=1.0 1"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\temp", r'"C:\\temp"'),
        ('end\\"', r'"end\\\""'),
        ("a, b=c d", '"a, b=c d"'),
        ("", '""'),
    ],
    ids=["quotes", "backslash", "backslash-then-quote", "no-escape-needed", "empty"],
)
def test_string_fields_escape_quotes_and_backslashes(value: str, written: str) -> None:
    """Double quotes and backslashes in string fields are escaped; other characters are not."""
    line = point_line(Point("alert", {"site": "s1"}, {"message": value}, 1))
    assert line == f"alert,site=s1 message={written} 1"


def test_empty_tags_are_left_out() -> None:
    """A tag with an empty value is omitted, not written as `tag=`."""
    point = Point("alert", {"site": "s1", "asset": "", "rule": "deadman"}, {"value": 0.0}, 3)
    assert point_line(point) == "alert,site=s1,rule=deadman value=0.0 3"


def test_point_without_tags_has_only_measurement_fields_and_time() -> None:
    """A point without tags is `measurement fields time`."""
    assert point_line(Point("alert", {}, {"value": 1.0}, 4)) == "alert value=1.0 4"


def test_string_field_with_newline_stays_on_one_line() -> None:
    """A string field containing a newline still gives exactly one line."""
    line = point_line(Point("alert", {"site": "s1"}, {"message": "line one\nline two"}, 1))
    assert "\n" not in line


def test_batch_lines_joins_readings_then_points_with_newlines() -> None:
    """batch_lines gives readings first, then points, one line each."""
    batch = Batch(
        [Reading("s1", "a1", None, 1, {"t": 1.0}), Reading("s1", "a2", "k", 2, {"t": 2.0})],
        [Point("alert", {"site": "s1"}, {"value": 3.0}, 3)],
    )
    assert batch_lines(batch) == [
        "telemetry,site=s1,asset=a1 t=1.0 1",
        "telemetry,site=s1,asset=a2,kind=k t=2.0 2",
        "alert,site=s1 value=3.0 3",
    ]


def test_batch_lines_has_one_line_per_batch_item() -> None:
    """The number of lines equals len(batch), which the spool counts."""
    batch = Batch(
        [Reading("s1", f"a{i}", None, i, {"t": float(i)}) for i in range(5)],
        [Point("anomaly", {"site": "s1"}, {"score": 0.5}, i) for i in range(3)],
    )
    assert len(batch_lines(batch)) == len(batch) == 8


def test_batch_lines_of_an_empty_batch_is_empty() -> None:
    """An empty batch gives no lines."""
    assert batch_lines(Batch()) == []


def test_point_lines_follow_the_tags_they_have_now() -> None:
    """A head is remembered by the tags' text, so a changed tag value gives its new line."""
    tags = {"site": "s1", "asset": "a1"}
    first = point_line(Point("anomaly", tags, {"score": 0.5}, 1))
    tags["asset"] = "a2"
    second = point_line(Point("anomaly", tags, {"score": 0.5}, 1))
    assert (first, second) == (
        "anomaly,site=s1,asset=a1 score=0.5 1",
        "anomaly,site=s1,asset=a2 score=0.5 1",
    )


def test_lines_stay_right_past_the_cache_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """More distinct assets than the caches hold: they start over, every line stays right."""
    monkeypatch.setattr(lineprotocol, "_CACHE_LIMIT", 3)
    for i in range(10):
        reading = Reading("s1", f"a{i}", "k", i, {"t": 1.0})
        point = Point("anomaly", {"site": "s1", "asset": f"a{i}"}, {f"f {i}": True}, i)
        assert reading_line(reading) == f"telemetry,site=s1,asset=a{i},kind=k t=1.0 {i}"
        assert point_line(point) == rf"anomaly,site=s1,asset=a{i} f\ {i}=true {i}"
    assert max(map(len, (lineprotocol._READING_HEADS, lineprotocol._POINT_HEADS))) <= 3
