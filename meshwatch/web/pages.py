"""The console's pages: fleet, alerts, asset, silences, and the ``/events`` stream.

Each page renders from the last known fleet state, so it shows even while the broker is away
(with the banner); what needs the store or the pipeline says so in a message when it cannot
be had, never with a stack trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, get_args

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from alerts.messages import LevelChange
from meshwatch.web.actions import ActionError
from meshwatch.web.app import Console
from meshwatch.web.charts import COLUMNS, chart
from meshwatch.web.fleet import STATUSES, Asset
from meshwatch.web.history import AlertRecord, HistoryError

Page = Callable[[Request], Awaitable[Response]]
# Worst first, for the alerts page (deadman alerts are critical).
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
#: The records whose message is a firing alert's: it fired, or changed level since.
_FIRING_RECORDS = frozenset({"firing", *get_args(LevelChange)})
# A comment line on an idle ``/events`` stream this often (s), so proxies keep it open.
_KEEPALIVE = 15.0
# How long a browser waits before reconnecting a dropped stream (ms).
_RETRY_MS = 2000
# History bounds: days of alerts and hours of an asset's data a page may ask for.
_MAX_DAYS, _MAX_HOURS = 30.0, 48.0


def routes(console: Console) -> list[Route]:
    """The GET routes, each behind the login."""

    def login_required(page: Callable[[Console, Request], Awaitable[Response]]) -> Page:
        async def guarded(request: Request) -> Response:
            if console.user(request) is None:
                return RedirectResponse(f"/login?next={request.url.path}", 303)
            return await page(console, request)

        return guarded

    return [
        Route("/", login_required(fleet_page)),
        Route("/alerts", login_required(alerts_page)),
        Route("/assets/{site}/{asset}", login_required(asset_page)),
        Route("/silences", login_required(silences_page)),
        Route("/events", login_required(events)),
    ]


async def fleet_page(console: Console, request: Request) -> Response:
    """Sites with their assets, coloured by status; filtered by site, kind and status."""
    every = console.fleet.snapshot()
    chosen = {key: request.query_params.get(key, "") for key in ("site", "kind", "status")}
    shown = [a for a in every if _matches(a, chosen)]
    sites: dict[str, list[Asset]] = {}
    for a in shown:
        sites.setdefault(a.site, []).append(a)
    counts = {s: sum(a.status == s for a in every) for s in STATUSES}
    context = {
        "sites": sites,
        "chosen": chosen,
        "options": {
            "site": sorted({a.site for a in every}),
            "kind": sorted({a.kind for a in every if a.kind}),
            "status": list(STATUSES),
        },
        "counts": counts,
        "total": len(every),
    }
    return console.render(request, "fleet.html", context)


def _matches(a: Asset, chosen: dict[str, str]) -> bool:
    return all(not value or getattr(a, key) == value for key, value in chosen.items())


async def alerts_page(console: Console, request: Request) -> Response:
    """Open alerts by severity with their actions, and the alert history of the last days."""
    days = _bounded(request.query_params.get("days"), 3.0, _MAX_DAYS)
    problem = None
    try:
        history = await run_in_threadpool(console.history.alerts, days)
    except HistoryError as exc:
        history, problem = [], str(exc)
    # The latest firing record of each alert, or change of its level, carries its message.
    messages: dict[str, AlertRecord] = {
        r.id: r for r in reversed(history) if r.state in _FIRING_RECORDS
    }
    rows: list[dict[str, Any]] = []
    for a in console.fleet.snapshot():
        for entry in a.alerts:
            alert_id = str(entry.get("id", ""))
            acted = console.actions.acted_on(alert_id)
            found = messages.get(alert_id)
            acked = any(act.what == "acknowledged" for act in acted)
            rows.append(
                {
                    "id": alert_id,
                    "rule": str(entry.get("rule", "")),
                    "severity": str(entry.get("severity", "")),
                    "state": "acknowledged" if acked else str(entry.get("state", "firing")),
                    "asset": a,
                    "message": found.message if found else a.reason,
                    "shelved_by": entry.get("shelved_by"),
                    "shelved_until": entry.get("shelved_until"),
                    "acted": acted,
                }
            )
    rows.sort(key=lambda r: (_SEVERITY_RANK.get(r["severity"], 3), r["asset"].site, r["id"]))
    context = {"rows": rows, "history": history, "days": days, "problem": problem}
    return console.render(request, "alerts.html", context)


async def asset_page(console: Console, request: Request) -> Response:
    """Each metric's last hours, the score against its threshold, episodes, reroute advice."""
    site, name = request.path_params["site"], request.path_params["asset"]
    hours = _bounded(request.query_params.get("hours"), 6.0, _MAX_HOURS)
    problem = None
    try:
        data = await run_in_threadpool(console.history.asset, site, name, hours, COLUMNS)
    except HistoryError as exc:
        data, problem = None, str(exc)
    charts = []
    if data is not None:
        charts = [chart(s, data.start, data.end, data.episodes) for s in data.metrics]
        charts.append(chart(data.score, data.start, data.end, data.episodes, data.threshold))
    context = {
        "site": site,
        "name": name,
        "health": console.fleet.assets.get((site, name)),
        "advice": console.fleet.advice.get((site, name)),
        "charts": charts,
        "hours": hours,
        "problem": problem,
        "episodes": data.episodes if data else [],
    }
    return console.render(request, "asset.html", context)


async def silences_page(console: Console, request: Request) -> Response:
    """The pipeline's active and pending silences, asked for through the broker."""
    problem = None
    silences: list[dict[str, Any]] = []
    try:
        silences = await run_in_threadpool(console.actions.silences)
    except ActionError as exc:
        problem = f"cannot list the silences: {exc}"
    return console.render(request, "silences.html", {"silences": silences, "problem": problem})


async def events(console: Console, request: Request) -> Response:
    """Server-sent events: ``health`` for each change, ``broker`` when it comes or goes."""
    fleet = console.fleet
    queue = fleet.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: {_RETRY_MS}\n\n"
            yield _event("broker", {"connected": fleet.connected})
            while True:
                try:
                    name, data = await asyncio.wait_for(queue.get(), _KEEPALIVE)
                except TimeoutError:
                    if await request.is_disconnected():  # the page went away
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield _event(name, data)
        finally:
            fleet.unsubscribe(queue)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n"


def _bounded(text: str | None, default: float, most: float) -> float:
    """A positive number from the query, within bounds; the default when it is none."""
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return min(max(value, 0.1), most) if value == value else default
