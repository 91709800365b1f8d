"""``meshwatch model reset``: discard an asset's model in the running pipeline."""

from __future__ import annotations

import click

from meshwatch.commands.running import ask, signed


@click.group()
def model() -> None:
    """The running pipeline's asset models."""


def _site_asset(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, str]:
    """``SITE/ASSET``, each an id as the telemetry topics have them."""
    # Imported here: the topic grammar costs every command's --help its regexes.
    from ingest.topic import ID_PATTERN

    site, _, asset = value.partition("/")
    if not (ID_PATTERN.fullmatch(site) and ID_PATTERN.fullmatch(asset)):
        raise click.BadParameter(
            f"{value!r} is not SITE/ASSET (ids of letters, digits, '_', '.', '-': lyon/cnc-1)"
        )
    return site, asset


@model.command("reset")
@click.argument("target", metavar="SITE/ASSET", callback=_site_asset)
@signed("Why (after maintenance: what was changed).", "Who asks for it.")
@click.pass_context
def model_reset(
    ctx: click.Context, target: tuple[str, str], comment: str, by: str, timeout: float
) -> None:
    """Discard an asset's model in the running pipeline: it learns again from scratch.

    For after maintenance: a new bearing changes what normal is. The model warms up again
    (no anomaly verdicts until it has), from the asset's next readings.
    """
    site, asset = target
    body = {"action": "reset", "site": site, "asset": asset, "by": by, "comment": comment}
    ask(ctx, "model", body, timeout)
    click.echo(f"model of {site}/{asset} reset by {by}: it learns again from scratch (warm-up)")
