"""The console's Starlette application: its parts, routes, session, security headers, errors.

`create_app` wires what `meshwatch.web.serve` built (the live fleet, the actions, the
history, the users) into one ASGI app. Pages are in `meshwatch.web.pages`, forms in
`meshwatch.web.forms`; every page and form needs a logged-in user, except in read-only mode,
where everybody is a viewer and nobody logs in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.timestamps import format_rfc3339
from meshwatch.web import csrf
from meshwatch.web.actions import Actions
from meshwatch.web.auth import LoginLimiter, User, Users
from meshwatch.web.fleet import Fleet
from meshwatch.web.history import History

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
#: The session cookie's name.
COOKIE = "meshwatch_session"
# A session lasts a shift (12 h), then the user logs in again.
_SESSION_SECONDS = 12 * 3600
# Everything comes from this console: no inline script, no other origin, no framing.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
#: The user every visitor is in read-only mode.
READER = User("read-only", "", "viewer")


@dataclass(slots=True)
class Console:
    """What the pages and forms work with.

    `users` None is read-only mode: no login, everybody a viewer.
    """

    fleet: Fleet
    actions: Actions
    history: History
    users: Users | None
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    templates: Jinja2Templates = field(default_factory=lambda: templates())

    @property
    def read_only(self) -> bool:
        """Whether nobody may act from this console."""
        return self.users is None

    def user(self, request: Request) -> User | None:
        """The logged-in user (as the users file says now), or None."""
        if self.users is None:
            return READER
        name = request.session.get("user")
        return self.users.users.get(name) if isinstance(name, str) else None

    def render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        """A page with what every page shows: the user, the banner, the flash, the token."""
        user = self.user(request)
        flash = request.session.pop("flash", None)
        base = {
            "user": user,
            "may_act": user is not None and user.may_act and not self.read_only,
            "read_only": self.read_only,
            "broker_up": self.fleet.connected,
            "csrf": csrf.token(request.session),
            "flash": flash if isinstance(flash, list) and len(flash) == 2 else None,
        }
        return self.templates.TemplateResponse(
            request, template, {**base, **context}, status_code=status
        )

    def message(self, request: Request, status: int, kind: str, text: str) -> Response:
        """A page that only says one thing (a refusal, a missing page)."""
        request.session["flash"] = [kind, text]
        return self.render(request, "message.html", {"status": status}, status)


def templates() -> Jinja2Templates:
    """The pages' templates, autoescaped (Starlette's default for ``.html``)."""
    loaded = Jinja2Templates(directory=str(_HERE / "templates"))
    loaded.env.filters["timestamp"] = format_rfc3339
    return loaded


class SecurityHeaders:
    """Adds the console's security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(console: Console, secret: str, *, https: bool = False) -> Starlette:
    """The ASGI app; `secret` signs the session cookie, `https` marks it Secure."""
    from meshwatch.web import forms, pages

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status >= 500:
            log.error("console error on %s", request.url.path, exc_info=exc)
            return PlainTextResponse("the console could not do that; see its log", status)
        text = "no such page" if status == 404 else str(getattr(exc, "detail", "refused"))
        return console.message(request, status, "error", text)

    routes = [
        *pages.routes(console),
        *forms.routes(console),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie=COOKIE,
                max_age=_SESSION_SECONDS,
                same_site="strict",
                https_only=https,
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: http_error},
    )
    app.state.console = console
    return app
