"""`VictoriaMetrics`: a local single-node TSDB, the InfluxDB write target of the tests.

It keeps every timestamp (``-retentionPeriod=100y``) and stores a redelivered point once
(``-dedup.minScrapeInterval=1ms``); `VictoriaMetrics.export` reads the samples back as
`ExportedSeries`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TypedDict, cast

from meshwatch.localservers.base import _LocalServer
from meshwatch.localservers.errors import ServerError
from meshwatch.localservers.process import (
    LOCALHOST,
    _check_port_free,
    _http_get,
    _Process,
    find_binary,
    free_port,
)


class ExportedSeries(TypedDict):
    """One series as returned by VictoriaMetrics' ``/api/v1/export`` (one JSON line).

    Attributes
    ----------
    metric : dict of str to str
        Labels, the metric name under ``__name__``.
    values : list of float
        Sample values, oldest first.
    timestamps : list of int
        Sample times in milliseconds since the epoch, one per value.
    """

    metric: dict[str, str]
    values: list[float]
    timestamps: list[int]


class VictoriaMetrics(_LocalServer):
    """A single-node VictoriaMetrics on 127.0.0.1, the InfluxDB write target of the tests.

    It runs with ``-retentionPeriod=100y`` (the default month silently drops older samples:
    replays and backfills) and ``-dedup.minScrapeInterval=1ms`` (a redelivered point is stored
    once); data lives in ``workdir/data``, the log in ``workdir/victoria-metrics.log``.

    Parameters
    ----------
    workdir : Path
        Directory for the data and the log (created).
    port : int, optional
        HTTP port; a free one by default. It stays the same across restarts.

    Notes
    -----
    Measured with VictoriaMetrics 1.79 and influxdb-client 1.50, writing through
    ``InfluxDBClient(url=vm.url, token="x", org="o").write_api(write_options=SYNCHRONOUS)``
    (``POST /api/v2/write``):

    - Each field becomes the series ``<measurement>_<field>``; the tags become labels and
      nothing else is added: the line ``telemetry,site=s1,asset=a1 temp=1.5 <ns>`` is
      exported as ``{"__name__": "telemetry_temp", "site": "s1", "asset": "a1"}``. Bucket,
      org and token are ignored (no ``db`` label on the v2 API; only the v1 ``/write?db=x``
      adds ``db="x"``).
    - Timestamps are kept in milliseconds: nanoseconds are truncated (``...123456789`` reads
      back as ``...123``), so two readings less than 1 ms apart are one sample after dedup.
      The write precision (s, ms, ns) is honoured.
    - Integers and booleans read back as floats (``3i`` as 3, ``true`` as 1); a string field
      does not keep its text: it becomes a series with value 0.
    - A write is not readable at once. Without a flush, a new series took ~10 s to appear in
      exports and a new sample of a known series ~1 s; after ``/internal/force_flush``
      (`flush`, which `export` calls first) both appear immediately.
    - Durability: SIGTERM (`stop`) saves everything. SIGKILL (`kill`) loses samples written
      in the last ~5 s, even after a force_flush.
    - Two writes of the same series and millisecond: with the dedup flag one sample is kept,
      but which value wins is arbitrary (about half first, half last, in one request or
      two), so only identical rewrites are safely idempotent. Without the flag both are kept.
    - Instant queries look back only 5 minutes from now: old timestamps need exports or a
      long range such as ``last_over_time(x[3650d])``.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self._port = port if port is not None else free_port()
        self.data_path = self.workdir / "data"
        self.log_path = self.workdir / "victoria-metrics.log"
        self._process = _Process("victoria-metrics", self.log_path)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8428``; also the InfluxDB client's ``url``.

        Examples
        --------
        >>> VictoriaMetrics(Path("/tmp/tsdb"), port=8428).url
        'http://127.0.0.1:8428'
        """
        return f"http://{LOCALHOST}:{self._port}"

    def start(self) -> None:
        """Start the server and wait until ``/health`` answers 200.

        Raises
        ------
        MissingBinaryError
            If victoria-metrics is not installed.
        ServerError
            If it exits or is not healthy within 20 s (the log tail is included).
        """
        binary = find_binary("victoria-metrics")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _check_port_free("victoria-metrics", self._port)
        self._process.spawn(
            [
                str(binary),
                f"-httpListenAddr={LOCALHOST}:{self._port}",
                f"-storageDataPath={self.data_path}",
                "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",
                "-loggerLevel=ERROR",
            ]
        )
        self._process.wait_ready(self._ready, 20.0, f"answering {self.url}/health")

    def _ready(self) -> bool:
        """Return whether this server (not another process) answers ``/health``."""
        if _http_get(f"{self.url}/health") is None:
            return False
        flags = _http_get(f"{self.url}/flags") or ""
        return f'-storageDataPath="{self.data_path}"' in flags.splitlines()

    def flush(self) -> None:
        """Make everything written so far visible to queries (``/internal/force_flush``).

        Raises
        ------
        ServerError
            If the server does not answer.
        """
        self._request("/internal/force_flush")

    def export(self, selector: str) -> list[ExportedSeries]:
        """Flush, then return every sample of the series matching ``selector``.

        Parameters
        ----------
        selector : str
            A series selector, e.g. ``'telemetry_temp{site="s1"}'`` or
            ``'{__name__=~"telemetry_.*"}'``.

        Returns
        -------
        list of ExportedSeries
            One entry per series, in no particular order; timestamps in milliseconds.

        Raises
        ------
        ServerError
            If the server does not answer or rejects the selector.
        """
        self.flush()
        form = urllib.parse.urlencode({"match[]": selector}).encode()
        body = self._request("/api/v1/export", form)
        return [
            cast(ExportedSeries, json.loads(line)) for line in body.splitlines() if line.strip()
        ]

    def _request(self, path: str, data: bytes | None = None) -> str:
        """GET (or POST a form to) ``path`` and return the body as text."""
        url = f"{self.url}{path}"
        try:
            with urllib.request.urlopen(url, data=data, timeout=30) as response:
                return bytes(response.read()).decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()
            raise ServerError(f"{url}: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ServerError(f"{url}: {exc}") from exc
