"""What the commands that talk to a running pipeline through the broker share.

``--timeout``, ``--by`` and ``--comment``; the request whose refusal or silence becomes one
line and exit status 1; how a reply's alert is named.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshwatch.clicontext import client_settings_of

if TYPE_CHECKING:
    from meshwatch.remote import Command

_F = TypeVar("_F", bound=Callable[..., Any])

timeout_option = click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the pipeline's reply.",
)


def _user() -> str:
    return os.environ.get("USER") or "cli"


def by_option(help_text: str, name: str = "by") -> Callable[[_F], _F]:
    """``--by``: who acts, ``$USER`` by default (passed as ``name``)."""
    return click.option("--by", name, default=_user, show_default="$USER or cli", help=help_text)


def signed(comment: str, by: str) -> Callable[[_F], _F]:
    """``--comment`` (empty by default), ``--by`` and ``--timeout``, in that order."""

    def decorate(command: _F) -> _F:
        command = timeout_option(command)
        command = by_option(by)(command)
        return click.option("--comment", default="", help=comment)(command)

    return decorate


def ask(
    ctx: click.Context, command: Command, body: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send a command to the running pipeline; its refusal or silence is one line, exit 1."""
    # Imported here: printing a command's help needs no broker client.
    from meshwatch import remote

    try:
        return remote.request(client_settings_of(ctx).mqtt, command, body, timeout=timeout)
    except remote.RemoteError as exc:
        raise click.ClickException(str(exc)) from None


def which(alert: dict[str, Any], alert_id: str) -> str:
    """``alert ID (rule on site/asset)``, from a reply's alert."""
    where = f" ({alert.get('rule')} on {alert.get('site')}/{alert.get('asset')})" if alert else ""
    return f"alert {alert.get('id', alert_id)}{where}"
