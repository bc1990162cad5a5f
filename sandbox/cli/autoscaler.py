"""`sandbox autoscaler status|set`: what the autoscaler decided, and changing its options live."""

from __future__ import annotations

import json
import sys

import click
import httpx

from sandbox import timeline
from sandbox.autoscaler.options import (
    AutoscalerOptions,
    OptionsError,
    load_options,
    options_path,
    update_options,
)
from sandbox.settings import load_settings

__all__ = ["COMMANDS"]


@click.group()
def autoscaler() -> None:
    """The engine autoscaler (HPA-like): its state and options."""


@autoscaler.command()
def status() -> None:
    """Options, the last decision with its inputs, and the replicas (from the running service)."""
    settings = load_settings()
    options = load_options(options_path(settings.run_dir))
    url = f"{settings.url(options.port)}/state"
    try:
        state = httpx.get(url, timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        click.echo(
            f"error: the autoscaler does not answer at {url} ({type(exc).__name__}); is it running?",
            err=True,
        )
        sys.exit(1)
    click.echo(json.dumps(state, indent=1))


@autoscaler.command(name="set")
@click.argument("pairs", nargs=-1, required=True)
def set_options(pairs: tuple[str, ...]) -> None:
    """Change options, e.g. `sandbox autoscaler set signal=queue_depth min_replicas=2`.

    The running autoscaler applies them at its next decision. Fields: see AutoscalerOptions.
    """
    settings = load_settings()
    changes: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in AutoscalerOptions.model_fields:
            click.echo(
                f"error: {pair!r}: expected field=value with a field of {', '.join(AutoscalerOptions.model_fields)}",
                err=True,
            )
            sys.exit(2)
        changes[key] = None if value in ("", "none", "null") else value
    try:
        before, after = update_options(options_path(settings.run_dir), **changes)
    except OptionsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    changed = {k: getattr(after, k) for k in changes if getattr(before, k) != getattr(after, k)}
    timeline.record(settings.run_dir, "autoscaler.set", {k: str(v) for k, v in changed.items()})
    click.echo("changed: " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "nothing"))


COMMANDS = [autoscaler]
