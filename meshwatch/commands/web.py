"""``meshwatch web`` (the console) and ``meshwatch web adduser`` (its users file)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from meshwatch.clicontext import config_option, settings_of


@click.group(invoke_without_command=True)
@config_option
@click.option("--read-only", is_flag=True, help="Serve without users: nobody logs in or acts.")
@click.option("--host", default=None, help="Address to listen on [default: web.host].")
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="Port [default: web.port]."
)
@click.pass_context
def web(
    ctx: click.Context,
    config_file: Path | None,
    read_only: bool,
    host: str | None,
    port: int | None,
) -> None:
    """Serve the web console: fleet health, alerts, acknowledge, silence, feedback, charts.

    Without a users file (web.users_file) it starts only with --read-only.
    """
    if config_file is not None:
        ctx.find_root().obj = config_file
    if ctx.invoked_subcommand is not None:
        return
    # Imported here: Starlette, uvicorn and argon2 cost every other command's start-up.
    from meshwatch.web.serve import WebServer

    WebServer(settings_of(ctx), read_only=read_only, host=host, port=port).serve()


def _password() -> str:
    """The password: prompted twice without echo, or one line of stdin when it is no TTY."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("no password on standard input")
        return line
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@web.command("adduser")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["viewer", "maintainer"]),
    required=True,
    help="viewer: reads only; maintainer: also acknowledges, silences, gives feedback.",
)
@click.option(
    "--users-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The users file [default: web.users_file].",
)
@click.pass_context
def adduser(ctx: click.Context, name: str, role: str, users_file: Path | None) -> None:
    """Add a console user, or set an existing one's password and role (argon2 hash)."""
    from meshwatch.web.auth import add_user

    path = users_file or settings_of(ctx).web.users_file
    if path is None:
        raise click.UsageError("give --users-file or set web.users_file")
    password = _password()
    if not password:
        raise click.UsageError("the password must not be empty")
    new = add_user(path, name, password, "maintainer" if role == "maintainer" else "viewer")
    click.echo(f"user {name} ({role}) {'added to' if new else 'updated in'} {path}")
