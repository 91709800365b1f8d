"""The console's forms: log in and out, acknowledge, silence, expire, give feedback.

Every form carries the session's CSRF token (`meshwatch.web.csrf`); a form without it, or
with another, is refused with 403 before anything else. Acting needs the ``maintainer``
role; the command sent names the logged-in user, never a field of the form. An action's
outcome is a flash message on the page the form came from (POST, redirect, GET).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshwatch.web import csrf
from meshwatch.web.actions import ActionError
from meshwatch.web.app import Console
from meshwatch.web.auth import User

Action = Callable[[Console, User, Request, FormData], str]

#: What a viewer (or anybody in read-only mode) is told when posting an action.
FORBIDDEN = "your role may only look: ask a maintainer to act"
_READ_ONLY = "this console runs read-only: nobody can act from it"
# Longest user name or password read from the login form.
_MAX_FIELD = 256


def routes(console: Console) -> list[Route]:
    """The POST routes (and the login page)."""

    def acting(action: Action, default: str) -> Callable[[Request], Awaitable[Response]]:
        async def post(request: Request) -> Response:
            form = await request.form()
            user = console.user(request)
            if user is None:
                return console.message(request, 403, "error", "log in first")
            if not csrf.valid(request.session, form.get("csrf")):
                return console.message(request, 403, "error", csrf.REFUSED)
            if console.read_only:
                return console.message(request, 403, "error", _READ_ONLY)
            if not user.may_act:
                return console.message(request, 403, "error", FORBIDDEN)
            try:
                text = await run_in_threadpool(action, console, user, request, form)
                request.session["flash"] = ["ok", text]
            except ActionError as exc:
                request.session["flash"] = ["error", str(exc)]
            return RedirectResponse(_next(form, default), 303)

        return post

    async def login(request: Request) -> Response:
        return await login_page(console, request)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not csrf.valid(request.session, form.get("csrf")):
            return console.message(request, 403, "error", csrf.REFUSED)
        request.session.clear()
        return RedirectResponse("/login", 303)

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/alerts/{alert_id}/ack", acting(_ack, "/alerts"), methods=["POST"]),
        Route("/alerts/{alert_id}/feedback", acting(_feedback, "/alerts"), methods=["POST"]),
        Route("/silences", acting(_silence, "/silences"), methods=["POST"]),
        Route("/silences/{silence_id}/expire", acting(_expire, "/silences"), methods=["POST"]),
    ]


async def login_page(console: Console, request: Request) -> Response:
    """The login form; a POST checks the password, at most 5 failures per 5 minutes."""
    target = _next(request.query_params, "/")
    if console.users is None:
        return RedirectResponse(target, 303)
    if request.method == "GET":
        return console.render(request, "login.html", {"next": target, "error": None})
    form = await request.form()
    if not csrf.valid(request.session, form.get("csrf")):
        return console.message(request, 403, "error", csrf.REFUSED)
    name = str(form.get("username", ""))[:_MAX_FIELD]
    password = str(form.get("password", ""))[:_MAX_FIELD]
    address = request.client.host if request.client else ""
    limiter = console.limiter
    if limiter.blocked(name, address):
        error = "too many failed logins: wait five minutes and try again"
        return console.render(request, "login.html", {"next": target, "error": error}, 429)
    user = await run_in_threadpool(console.users.check, name, password)
    if user is None:
        limiter.failed(name, address)
        error = "unknown user name or wrong password"
        return console.render(request, "login.html", {"next": target, "error": error}, 401)
    limiter.succeeded(name, address)
    request.session.clear()  # a new session at login: no fixation
    request.session["user"] = user.name
    return RedirectResponse(_next(form, target), 303)


def _next(values: object, default: str) -> str:
    """Where to go after a form: a path of this console, never another site."""
    target = values.get("next") if hasattr(values, "get") else None
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _ack(console: Console, user: User, request: Request, form: FormData) -> str:
    return console.actions.ack(request.path_params["alert_id"], user.name, _text(form, "comment"))


def _feedback(console: Console, user: User, request: Request, form: FormData) -> str:
    alert_id = request.path_params["alert_id"]
    verdict = _text(form, "verdict")
    return console.actions.feedback(alert_id, verdict, user.name, _text(form, "comment"))


def _silence(console: Console, user: User, request: Request, form: FormData) -> str:
    site = _text(form, "site")
    if not site:
        raise ActionError("the form names no site to silence")
    asset = _text(form, "asset") or None
    return console.actions.silence(
        site, asset, _text(form, "duration").strip(), _text(form, "reason"), user.name
    )


def _expire(console: Console, user: User, request: Request, form: FormData) -> str:
    return console.actions.expire(request.path_params["silence_id"], user.name)
