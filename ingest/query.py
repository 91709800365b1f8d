"""Reading the store back: the rows of a measurement in a time range, whichever store it is.

The pipeline writes docs/design.md §5's measurements to the embedded store or to InfluxDB;
alert history (`alerts.history`) and the web console read them back through a `StoreReader`,
so neither knows which store is behind it. `ingest.embeddedreader` reads the SQLite file,
`ingest.influxreader` asks InfluxDB in Flux.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.base import FieldValue
from ingest.settings import InfluxSettings


@dataclass(frozen=True, slots=True)
class Row:
    """One point of a measurement as stored: its tags (a missing tag is ``''``), fields, time.

    Parameters
    ----------
    measurement
        The measurement (``alert``, ``telemetry``...).
    tags
        Every tag of the measurement (docs/design.md §5).
    fields
        The fields written at this time (merged, when written more than once).
    ts
        Nanoseconds since the Unix epoch.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: int


class StoreReader(Protocol):
    """Reads points back from the store the pipeline writes; raises `StoreReadError`."""

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
        """Points with ``start <= ts < stop`` whose tags equal `tags`, by time (``limit`` first)."""
        ...

    def latest(self, measurement: str, tags: Mapping[str, str]) -> int | None:
        """The time of the newest point whose tags equal `tags` (None: there is none)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def open_reader(influx: InfluxSettings, data_dir: Path) -> StoreReader:
    """The reader of the store the pipeline writes: InfluxDB with ``influx.url``, else embedded."""
    # Imported here: influxdb-client costs start-up where the store is embedded.
    if influx.url is not None:
        from ingest.influxreader import InfluxReader

        return InfluxReader(influx)
    from ingest.embeddedreader import EmbeddedReader

    return EmbeddedReader(data_dir / "meshwatch.db")
