"""The ``meshwatch`` command line: the top group and the console script's entry point.

Each command lives in a module of `meshwatch.commands`, imported only when the command runs
or its help is printed: a command that never scores does not pay for importing river and the
detectors.

Every error the user can act on is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from meshwatch.clicontext import config_option
from meshwatch.errors import MeshwatchError

# Command name -> "module:attribute" of its click command, imported on first use.
_COMMANDS = {
    "ack": "meshwatch.commands.alerts:ack",
    "alerts": "meshwatch.commands.history:alerts",
    "config": "meshwatch.commands.config:config",
    "deadletters": "meshwatch.commands.deadletters:deadletters",
    "demo": "meshwatch.commands.demo:demo",
    "evaluate": "meshwatch.commands.evaluate:evaluate",
    "feedback": "meshwatch.commands.alerts:feedback",
    "model": "meshwatch.commands.model:model",
    "record": "meshwatch.commands.recording:record",
    "replay": "meshwatch.commands.recording:replay",
    "run": "meshwatch.commands.run:run",
    "shelve": "meshwatch.commands.alerts:shelve",
    "silence": "meshwatch.commands.silence:silence",
    "simulate": "meshwatch.commands.simulate:simulate",
    "status": "meshwatch.commands.status:status",
    "unshelve": "meshwatch.commands.alerts:unshelve",
    "web": "meshwatch.commands.web:web",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported by name when used, so each imports only its own.

    Click's "lazily loading subcommands" recipe; ``--help`` imports them all for their help.
    """

    def __init__(self, *args: Any, commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted (as click lists them)."""
        return sorted(self._lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``, imported now; None for an unknown name."""
        if cmd_name not in self._lazy:
            return None
        module, _, attribute = self._lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
        return command


@click.group(
    cls=_LazyGroup,
    commands=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@config_option
@click.version_option(package_name="meshwatch")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """meshwatch: equipment-health monitoring for networks of micro-factories."""
    ctx.obj = config_file


def main() -> None:
    """Entry point of the console script: one line per error, non-zero exit."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("meshwatch: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"meshwatch: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except MeshwatchError as exc:
        click.echo(f"meshwatch: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        # Imported here: the simulators package costs every other command its start-up time.
        from simulators.errors import SimulatorError

        if not isinstance(exc, SimulatorError):
            raise
        click.echo(f"meshwatch: {exc}", err=True)
        sys.exit(2)
