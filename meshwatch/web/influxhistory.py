"""Reading history from InfluxDB (``influx.url`` set) through influxdb-client's Flux query API.

The same facts as the embedded store (docs/design.md §5): each measurement's fields are
Flux rows of ``_time``, ``_field``, ``_value`` with the tags as columns.
"""

from __future__ import annotations

import time
from typing import Any

from ingest.settings import InfluxSettings
from meshwatch.web.history import (
    HISTORY_LIMIT,
    AlertRecord,
    AssetHistory,
    HistoryError,
    Series,
    episodes,
)

_NS = 1_000_000_000


def flux_string(value: str) -> str:
    r"""A Flux string literal: quotes, backslashes and ``${`` interpolation escaped.

    Examples
    --------
    >>> print(flux_string('a"b\\c${x}'))
    "a\"b\\c\${x}"
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


class InfluxHistory:
    """History from InfluxDB 2.x/3 (Flux), read with a token that may only read the bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        # Imported here: the client costs the console's start-up when the store is embedded.
        from influxdb_client.client.influxdb_client import InfluxDBClient

        assert settings.url is not None
        token = settings.token.get_secret_value() if settings.token else ""
        self._client = InfluxDBClient(
            url=settings.url, token=token, org=settings.org, timeout=int(settings.timeout * 1000)
        )
        self._bucket = settings.bucket

    def alerts(self, days: float) -> list[AlertRecord]:
        """Alert transitions of the last `days`, newest first."""
        rows = self._rows(
            f"range(start: -{int(days * 86_400)}s)",
            'r._measurement == "alert"',
        )
        records = sorted(_records(rows), key=lambda r: r.ts, reverse=True)
        return records[:HISTORY_LIMIT]

    def asset(self, site: str, asset: str, hours: float) -> AssetHistory:
        """The asset's last `hours` (ending now: Flux ranges are relative to the server's clock)."""
        seconds = int(hours * 3600)
        end = time.time_ns()
        history = AssetHistory(end - seconds * _NS, end)
        where = f"r.site == {flux_string(site)} and r.asset == {flux_string(asset)}"
        window = f"range(start: -{seconds}s)"
        metrics: dict[str, list[tuple[int, float]]] = {}
        for row in self._rows(window, f'r._measurement == "telemetry" and {where}'):
            if isinstance(row["_value"], int | float):
                metrics.setdefault(row["_field"], []).append((row["_ns"], float(row["_value"])))
        history.metrics = [Series(name, sorted(points)) for name, points in sorted(metrics.items())]
        scores = [
            (row["_ns"], float(row["_value"]))
            for row in self._rows(
                window, f'r._measurement == "anomaly" and r._field == "score" and {where}'
            )
        ]
        history.score = Series("score", sorted(scores))
        alerts = self._rows(
            f"range(start: -{seconds * 2}s)", f'r._measurement == "alert" and {where}'
        )
        records = sorted(_records(alerts), key=lambda r: r.ts)
        history.episodes = episodes(records)
        return history

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()  # type: ignore[no-untyped-call]

    def _rows(self, window: str, predicate: str) -> list[dict[str, Any]]:
        flux = (
            f"from(bucket: {flux_string(self._bucket)}) |> {window} "
            f"|> filter(fn: (r) => {predicate})"
        )
        try:
            tables = self._client.query_api().query(flux)
        except Exception as exc:  # the I/O shell: urllib3, HTTP and Flux errors alike
            raise HistoryError(f"cannot query InfluxDB: {exc}") from None
        rows = []
        for table in tables:
            for record in table.records:
                values = dict(record.values)
                values["_ns"] = int(record.get_time().timestamp() * _NS)  # type: ignore[no-untyped-call]
                rows.append(values)
        return rows


def _records(rows: list[dict[str, Any]]) -> list[AlertRecord]:
    """Alert rows (one per field) folded into one record per transition."""
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["_ns"], row.get("site"), row.get("asset"), row.get("rule"), row.get("severity"))
        folded.setdefault(key, {})[row["_field"]] = row["_value"]
    return [AlertRecord.of(key[0], key[1:], fields) for key, fields in folded.items()]
