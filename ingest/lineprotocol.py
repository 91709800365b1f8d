"""InfluxDB line protocol for readings and points, formatted directly.

Formatting strings costs a fraction of influxdb-client's ``Point`` (docs/design.md §12). Reading
IDs and metric names are validated to ``[A-Za-z0-9_.-]`` by the decoder, so they need no
escaping; points' tags and string fields are escaped. Both line heads are cached: a reading's
``telemetry,site=..,asset=..[,kind=..]`` per asset, and a point's measurement and escaped tags
per distinct tag set, as are escaped field keys. Scoring makes one ``anomaly`` point per
reading with the same few tags and keys, so escaping them again for every point was the
largest cost of the InfluxDB store's write (~10 µs of two lines per reading, issue 14).
"""

from __future__ import annotations

from collections.abc import Mapping

from ingest.base import Batch, FieldValue, Point, Reading

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})
# The caches are bounded, so that a flood of distinct tag values cannot grow memory: past
# the limit a cache starts over.
_CACHE_LIMIT = 100_000


# Heads of reading lines by (site, asset, kind); of point lines by (measurement, tag items);
# escaped field keys by key. Module-wide: they depend on the text alone.
_READING_HEADS: dict[tuple[str, str, str | None], str] = {}
_POINT_HEADS: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
_KEYS: dict[str, str] = {}


def reading_line(r: Reading) -> str:
    """One reading as a ``telemetry`` line.

    Examples
    --------
    >>> reading_line(Reading("s1", "a1", "cnc-mill", 5, {"t": 61.2, "on": 1.0}))
    'telemetry,site=s1,asset=a1,kind=cnc-mill t=61.2,on=1.0 5'
    """
    key = (r.site, r.asset, r.kind)
    head = _READING_HEADS.get(key)
    if head is None:
        head = _reading_head(*key)
    fields = ",".join([f"{name}={value!r}" for name, value in r.metrics.items()])
    return f"{head} {fields} {r.ts}"


def point_line(p: Point) -> str:
    r"""One point as a line, tags in the given order, empty tags left out.

    Examples
    --------
    >>> point_line(Point("alert", {"site": "s 1", "asset": "a1"},
    ...                  {"state": 'fir"ing', "value": 2.0, "ok": False}, 9))
    'alert,site=s\\ 1,asset=a1 state="fir\\"ing",value=2.0,ok=false 9'
    """
    key = (p.measurement, tuple(p.tags.items()))
    head = _POINT_HEADS.get(key)
    if head is None:
        head = _point_head(p.measurement, p.tags)
    keys = _KEYS
    fields = []
    for name, value in p.fields.items():
        escaped = keys.get(name)
        if escaped is None:
            escaped = _escaped_key(name)
        if type(value) is float:
            fields.append(f"{escaped}={value!r}")
        elif type(value) is bool:
            fields.append(f"{escaped}=true" if value else f"{escaped}=false")
        elif type(value) is str:
            fields.append(f'{escaped}="{_escaped_string(value)}"')
        else:
            fields.append(f"{escaped}={_field(value)}")
    return f"{head} {','.join(fields)} {p.ts}"


def batch_lines(batch: Batch) -> list[str]:
    """All readings and points of a batch, one line each."""
    lines = [reading_line(r) for r in batch.readings]
    lines.extend([point_line(p) for p in batch.points])
    return lines


def _reading_head(site: str, asset: str, kind: str | None) -> str:
    head = f"telemetry,site={site},asset={asset}" + (f",kind={kind}" if kind else "")
    if len(_READING_HEADS) >= _CACHE_LIMIT:
        _READING_HEADS.clear()
    _READING_HEADS[(site, asset, kind)] = head
    return head


def _point_head(measurement: str, tags: Mapping[str, str]) -> str:
    head = measurement.translate(_KEY_ESCAPES) + "".join(
        f",{key.translate(_KEY_ESCAPES)}={value.translate(_KEY_ESCAPES)}"
        for key, value in tags.items()
        if value
    )
    if len(_POINT_HEADS) >= _CACHE_LIMIT:
        _POINT_HEADS.clear()
    _POINT_HEADS[(measurement, tuple(tags.items()))] = head
    return head


def _escaped_key(name: str) -> str:
    escaped = name.translate(_KEY_ESCAPES)
    if len(_KEYS) >= _CACHE_LIMIT:
        _KEYS.clear()
    _KEYS[name] = escaped
    return escaped


def _escaped_string(value: str) -> str:
    """A string field's text: line protocol has no newline in values (it would split the line)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _field(value: FieldValue) -> str:
    """A field value of a subclass of float, bool or str (an int is written as a float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{_escaped_string(value)}"'
    return repr(float(value))
