"""Reading InfluxDB back (``influx.url`` set) through influxdb-client's Flux query API.

The same facts as the embedded store (docs/design.md §5). Each query is one Flux pipeline:
the bucket, a time range in nanoseconds, a filter on the measurement and exact tag values,
then ``pivot`` folds the fields written at one time back into one row, as the embedded
store keeps them. VictoriaMetrics takes InfluxDB writes but answers no Flux, so with it as
the store only the console's live views and Grafana work; `flux` is what is unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.embedded import TAGS
from ingest.errors import StoreReadError
from ingest.query import Row
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
