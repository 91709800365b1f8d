"""``meshwatch config sample`` and ``config show``: the configuration, commented or effective."""

from __future__ import annotations

from importlib import resources

import click

from meshwatch.clicontext import settings_of


@click.group()
def config() -> None:
    """Show the configuration."""


@config.command()
def sample() -> None:
    """Print a commented sample configuration file with every default."""
    click.echo(resources.files("meshwatch").joinpath("sample.yaml").read_text(), nl=False)


@config.command()
@click.pass_context
def show(ctx: click.Context) -> None:
    """Print the effective configuration (secrets masked)."""
    import yaml

    settings = settings_of(ctx)
    click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), nl=False)
