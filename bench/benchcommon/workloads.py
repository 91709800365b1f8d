"""The two workloads: deterministic messages from 50 assets at 5 sites, generated once.

Message ``i`` comes from asset ``i % assets``, and asset ``a`` sits at site ``a % sites``.
Reading ``r`` of a workload has ``ts = BASE_MS + r`` epoch ms, so every timestamp is distinct
and in the past, and its four metrics are a function of ``r`` alone: the store can be checked
reading by reading against `metrics_for`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import orjson

TOPIC_TEMPLATE = "plant/{site}/{asset}/telemetry"
TOPIC_FILTER = "plant/+/+/telemetry"
KIND = "cnc-mill"
#: 2023-11-14T22:13:20Z in epoch ms: every reading gets ``BASE_MS + its index`` (distinct, past).
BASE_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Workload:
    """Messages of one workload, generated once and published to both subscribers.

    Attributes
    ----------
    name : str
        ``"single"`` (one reading a message) or ``"batched"`` (an array of readings).
    batch : int
        Readings per message; 1 for single-reading messages (a JSON object, not an array).
    assets : int
        Number of assets; message ``i`` comes from asset ``i % assets``.
    sites : int
        Number of sites; asset ``a`` sits at site ``a % sites``.
    messages : list of tuple of (str, bytes)
        Topic and payload of each message, in publishing order.
    """

    name: str
    batch: int
    assets: int
    sites: int
    messages: list[tuple[str, bytes]]

    @property
    def readings(self) -> int:
        """Readings in all messages."""
        return len(self.messages) * self.batch

    @property
    def payload_bytes(self) -> int:
        """Bytes of all payloads."""
        return sum(len(p) for _, p in self.messages)


def site_asset(asset_index: int, sites: int) -> tuple[str, str]:
    """Return the site and asset ID of asset number ``asset_index``.

    Parameters
    ----------
    asset_index : int
        Asset number, from 0.
    sites : int
        Number of sites the assets are spread over.

    Returns
    -------
    tuple of (str, str)
        ``("site-3", "cnc-08")`` for asset 8 of 5 sites.
    """
    return f"site-{asset_index % sites}", f"cnc-{asset_index:02d}"


def metrics_for(reading: int) -> dict[str, float]:
    """Return the four metrics of reading number ``reading`` (deterministic).

    Parameters
    ----------
    reading : int
        Index of the reading in its workload.

    Returns
    -------
    dict of str to float
        ``vibration_rms``, ``spindle_temp_c``, ``spindle_rpm`` and ``power_kw``.
    """
    return {
        "vibration_rms": round(0.3 + (reading % 101) / 1000, 3),
        "spindle_temp_c": round(55.0 + (reading % 37) / 10, 1),
        "spindle_rpm": float(8000 + reading % 500),
        "power_kw": round(4.0 + (reading % 53) / 100, 2),
    }


def add_workload_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that size the two workloads, shared by the benchmarks that drain them.

    ``--messages``, ``--batched-messages``, ``--batch``, ``--assets`` and ``--sites``; by
    default 100,000 single-reading and 20,000 50-reading messages from 50 assets at 5 sites.
    """
    add = parser.add_argument
    add("--messages", type=int, default=100_000, help="single-reading messages (100,000)")
    add(
        "--batched-messages",
        type=int,
        default=20_000,
        help="batched messages (20,000, i.e. 1,000,000 readings with --batch 50)",
    )
    add("--batch", type=int, default=50, help="readings per batched message (50)")
    add("--assets", type=int, default=50, help="assets sending the messages (50)")
    add("--sites", type=int, default=5, help="sites (5)")


def make_workload(name: str, messages: int, batch: int, assets: int, sites: int) -> Workload:
    """Generate the messages of a workload.

    Parameters
    ----------
    name : str
        Workload name.
    messages : int
        Number of MQTT messages.
    batch : int
        Readings per message; 1 makes each payload one JSON object, more a JSON array.
    assets : int
        Number of assets (message ``i`` belongs to asset ``i % assets``).
    sites : int
        Number of sites.

    Returns
    -------
    Workload
        The topics and payload bytes; reading ``r`` has ``ts = BASE_MS + r`` (epoch ms).
    """
    topics = [
        TOPIC_TEMPLATE.format(site=s, asset=a)
        for s, a in (site_asset(i, sites) for i in range(assets))
    ]
    dumps = orjson.dumps
    out: list[tuple[str, bytes]] = []
    for i in range(messages):
        first = i * batch
        docs = [
            {"ts": BASE_MS + r, "kind": KIND, "metrics": metrics_for(r)}
            for r in range(first, first + batch)
        ]
        out.append((topics[i % assets], dumps(docs[0] if batch == 1 else docs)))
    return Workload(name, batch, assets, sites, out)


def expected_per_asset(workload: Workload) -> dict[tuple[str, str], int]:
    """Return how many readings each (site, asset) should have stored.

    Parameters
    ----------
    workload : Workload
        The workload that was published.

    Returns
    -------
    dict of tuple of (str, str) to int
        Readings per (site, asset).
    """
    counts: dict[tuple[str, str], int] = {}
    for i in range(len(workload.messages)):
        key = site_asset(i % workload.assets, workload.sites)
        counts[key] = counts.get(key, 0) + workload.batch
    return counts
