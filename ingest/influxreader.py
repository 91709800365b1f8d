"""Reading InfluxDB back (``influx.url`` set) through influxdb-client's Flux query API.

The same facts as the embedded store (docs/design.md §5). Each query is one Flux pipeline:
the bucket, a time range in nanoseconds, a filter on the measurement and exact tag values,
then ``pivot`` folds the fields written at one time back into one row, as the embedded
store keeps them; `InfluxReader.extremes` has InfluxDB reduce a range with ``aggregateWindow``
(`flux_extremes`). VictoriaMetrics takes InfluxDB writes but answers no Flux, so with it as
the store only the console's live views and Grafana work; `flux` is what is unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ingest.embedded import TAGS
from ingest.errors import StoreReadError
from ingest.query import Buckets, Extremes, Row
from ingest.settings import InfluxSettings

_NS = 1_000_000_000
#: Columns of a pivoted Flux row that are neither tags nor fields.
_FLUX_COLUMNS = frozenset({"result", "table", "_start", "_stop", "_time", "_measurement"})


def flux_string(value: str) -> str:
    r"""A Flux string literal: quotes, backslashes and ``${`` interpolation escaped.

    Examples
    --------
    >>> print(flux_string('a"b\\c${x}'))
    "a\"b\\c\${x}"
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def flux(
    bucket: str,
    measurement: str,
    *,
    start: int,
    stop: int | None = None,
    tags: Mapping[str, str] | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> str:
    """The Flux query of `InfluxReader.rows` (times in ns; tag values escaped).

    Examples
    --------
    >>> print(flux("b", "alert", start=0, stop=10, tags={"site": "lyon"}, limit=5))
    from(bucket: "b")
      |> range(start: time(v: 0), stop: time(v: 10))
      |> filter(fn: (r) => r._measurement == "alert" and r.site == "lyon")
      |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
      |> group()
      |> sort(columns: ["_time"], desc: false)
      |> limit(n: 5)
    """
    window = f"start: time(v: {int(start)})"
    if stop is not None:
        window += f", stop: time(v: {int(stop)})"
    predicate = _predicate(measurement, tags or {})
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range({window})",
        f"  |> filter(fn: (r) => {predicate})",
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        "  |> group()",
        f'  |> sort(columns: ["_time"], desc: {"true" if newest_first else "false"})',
    ]
    if limit is not None:
        lines.append(f"  |> limit(n: {int(limit)})")
    return "\n".join(lines)


def flux_extremes(bucket: str, buckets: Buckets) -> str:
    """The Flux query of `InfluxReader.extremes`: results ``low`` and ``high`` per window.

    Windows are `Buckets.width` wide and start at the range's start (``offset``), each timed
    by its start; the kinds of one asset are one series (``group`` by field). ``unless``
    needs the point's fields side by side, so it pivots and keeps the field alone.

    Examples
    --------
    >>> print(flux_extremes("b", Buckets("anomaly", 10, 110, 4, None, "score", "warming_up")))
    data = from(bucket: "b")
      |> range(start: time(v: 10), stop: time(v: 110))
      |> filter(fn: (r) => r._measurement == "anomaly" and \
(r._field == "score" or r._field == "warming_up"))
      |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
      |> filter(fn: (r) => exists r["score"] and \
(if exists r["warming_up"] then not r["warming_up"] else true))
      |> map(fn: (r) => ({r with _field: "score", _value: r["score"]}))
      |> group(columns: ["_field"])
    data
      |> aggregateWindow(every: 25ns, offset: 10ns, fn: min, createEmpty: false, \
timeSrc: "_start")
      |> yield(name: "low")
    data
      |> aggregateWindow(every: 25ns, offset: 10ns, fn: max, createEmpty: false, \
timeSrc: "_start")
      |> yield(name: "high")
    """
    start, stop, width = buckets.start, buckets.stop, buckets.width
    field, unless = buckets.field, buckets.unless
    predicate = _predicate(buckets.measurement, buckets.tags or {})
    lines = [
        f"data = from(bucket: {flux_string(bucket)})",
        f"  |> range(start: time(v: {int(start)}), stop: time(v: {int(stop)}))",
    ]
    if unless is None:
        chosen = "" if field is None else f" and r._field == {flux_string(field)}"
        lines.append(f"  |> filter(fn: (r) => {predicate}{chosen})")
    elif field is None:
        raise ValueError("unless needs a field: InfluxDB keeps each field a series of its own")
    else:
        name, flag = flux_string(field), flux_string(unless)
        lines += [
            f"  |> filter(fn: (r) => {predicate} and (r._field == {name} or r._field == {flag}))",
            '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
            f"  |> filter(fn: (r) => exists r[{name}] and "
            f"(if exists r[{flag}] then not r[{flag}] else true))",
            f"  |> map(fn: (r) => ({{r with _field: {name}, _value: r[{name}]}}))",
        ]
    lines.append('  |> group(columns: ["_field"])')
    for result, fn in (("low", "min"), ("high", "max")):
        lines += [
            "data",
            f"  |> aggregateWindow(every: {width}ns, offset: {start % width}ns, fn: {fn}, "
            'createEmpty: false, timeSrc: "_start")',
            f'  |> yield(name: "{result}")',
        ]
    return "\n".join(lines)


def extremes_of(records: Iterable[tuple[Mapping[str, Any], int]]) -> list[Extremes]:
    """The ``low`` and ``high`` records of `flux_extremes` paired by field and window.

    Examples
    --------
    >>> extremes_of([({"result": "high", "_field": "t", "_value": 3.0}, 5),
    ...              ({"result": "low", "_field": "t", "_value": 1}, 5)])
    [Extremes(field='t', ts=5, low=1.0, high=3.0)]
    """
    bounds: dict[tuple[str, int], dict[str, float]] = {}
    for values, ts in records:
        key = (str(values["_field"]), ts)
        bounds.setdefault(key, {})[str(values["result"])] = float(values["_value"])
    return [
        Extremes(name, ts, found["low"], found["high"])
        for (name, ts), found in sorted(bounds.items())
        if len(found) == 2
    ]


def _predicate(measurement: str, tags: Mapping[str, str]) -> str:
    """The filter: the measurement, and each tag's value (an empty one: no such tag).

    Line protocol leaves empty tags out (`ingest.lineprotocol`), so Flux sees no column.

    Examples
    --------
    >>> _predicate("alert_action", {"site": "", "action": "silence"})
    'r._measurement == "alert_action" and not exists r.site and r.action == "silence"'
    """
    terms = [f"r._measurement == {flux_string(measurement)}"]
    for tag, value in tags.items():
        if tag not in TAGS.get(measurement, (tag,)):
            raise ValueError(f"{measurement} has no tag {tag!r}")
        terms.append(f"r.{tag} == {flux_string(value)}" if value else f"not exists r.{tag}")
    return " and ".join(terms)


def row_of(measurement: str, values: Mapping[str, Any], ts: int) -> Row:
    """A pivoted Flux row as a `Row`: the measurement's tags, every other non-null column a field.

    Examples
    --------
    >>> row_of("alert", {"_time": None, "site": "s", "state": "firing", "value": None}, 7)
    Row(measurement='alert', tags={'site': 's', 'asset': '', 'rule': '', 'severity': ''}, \
fields={'state': 'firing'}, ts=7)
    """
    tags = TAGS[measurement]
    return Row(
        measurement,
        {tag: str(values.get(tag) or "") for tag in tags},
        {
            name: value
            for name, value in values.items()
            if name not in _FLUX_COLUMNS and name not in tags and value is not None
        },
        ts,
    )


class InfluxReader:
    """A `StoreReader` of InfluxDB 2.x/3 (Flux), with a token that may only read the bucket.

    Parameters
    ----------
    settings
        ``influx.*``: the server, token, org and bucket the pipeline writes.
    """

    def __init__(self, settings: InfluxSettings) -> None:
        # Imported here: the client costs start-up when the store is embedded.
        from influxdb_client.client.influxdb_client import InfluxDBClient

        if settings.url is None:
            raise ValueError("influx.url is not set: the store is the embedded one")
        token = settings.token.get_secret_value() if settings.token else ""
        self._client = InfluxDBClient(
            url=settings.url, token=token, org=settings.org, timeout=int(settings.timeout * 1000)
        )
        self._bucket = settings.bucket
        self.url = settings.url

    def rows(
        self,
        measurement: str,
        *,
        start: int,
        stop: int | None = None,
        tags: Mapping[str, str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Row]:
        """Points with ``start <= ts < stop`` whose tags equal `tags`, by time."""
        if measurement not in TAGS:
            raise ValueError(f"unknown measurement {measurement!r}; known: {', '.join(TAGS)}")
        query = flux(
            self._bucket,
            measurement,
            start=start,
            stop=stop,
            tags=tags,
            newest_first=newest_first,
            limit=limit,
        )
        return [row_of(measurement, values, ts) for values, ts in self._records(query)]

    def extremes(self, buckets: Buckets) -> list[Extremes]:
        """Each numeric field's lowest and highest value per time bucket, by field then time."""
        if buckets.measurement not in TAGS:
            known = ", ".join(TAGS)
            raise ValueError(f"unknown measurement {buckets.measurement!r}; known: {known}")
        if buckets.stop <= buckets.start:  # Flux refuses an empty range
            return []
        return extremes_of(self._records(flux_extremes(self._bucket, buckets)))

    def latest(self, measurement: str, tags: Mapping[str, str]) -> int | None:
        """The time of the newest point whose tags equal `tags` (``last()`` of each field)."""
        predicate = _predicate(measurement, tags)
        query = (
            f"from(bucket: {flux_string(self._bucket)}) |> range(start: 0) "
            f"|> filter(fn: (r) => {predicate}) |> last() |> group() "
            '|> max(column: "_time")'
        )
        found = [ts for _, ts in self._records(query)]
        return max(found) if found else None

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()  # type: ignore[no-untyped-call]

    def _records(self, query: str) -> list[tuple[dict[str, Any], int]]:
        try:
            tables = self._client.query_api().query(query)
        except Exception as exc:  # the I/O shell: urllib3, HTTP and Flux errors alike
            raise StoreReadError(f"cannot query InfluxDB at {self.url}: {exc}") from None
        found = []
        for table in tables:
            for record in table.records:
                when = record.get_time()  # type: ignore[no-untyped-call]
                # datetime keeps microseconds: the ns below them are lost (docs/design.md §5)
                ts = int(when.timestamp()) * _NS + when.microsecond * 1000
                found.append((dict(record.values), ts))
        return found
