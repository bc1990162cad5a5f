"""`sandbox faults list|inject|revert|active` and `sandbox reset`.

Every command first reverts handles whose TTL has passed, so an expired fault never outlives
the next command, even when the drill that made it crashed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

__all__ = ["COMMANDS", "faults_group", "parse_param", "reset_command"]


def parse_param(pair: str) -> tuple[str, Any]:
    """``k=v``; the value is JSON when it parses (numbers, true/false, objects), else a string."""
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise click.BadParameter(
            f"{pair!r}: expected name=value, e.g. delay_s=0.5", param_hint="--param"
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _context() -> Any:
    from faults import StackContext
    from sandbox.settings import load_settings

    return StackContext.from_settings(
        load_settings(), progress=lambda message: click.echo(f"  {message}")
    )


def _reap(ctx: Any) -> None:
    from faults import reap_expired

    for handle in reap_expired(ctx):
        click.echo(f"TTL expired: reverted {handle.id}")


def _describe(handle: Any) -> str:
    left = handle.expires_at - time.time()
    params = ", ".join(f"{k}={v}" for k, v in handle.params.items() if v is not None)
    return f"{handle.id}  {handle.state.value:<9} {handle.target:<28} {params}  (TTL {max(0, left):.0f}s, by {handle.source})"


@click.group("faults")
def faults_group() -> None:
    """Inject and revert faults (and operator changes) on the running stack."""


@faults_group.command("list")
def list_command() -> None:
    """Every fault and operator change, its parameters and its effect."""
    from faults import list_changes

    for change in list_changes():
        click.secho(f"{change.name}  [{change.category.value}]", bold=True)
        click.echo(f"  {change.summary}")
        click.echo(f"  effect: {change.effect}")
        click.echo(f"  default TTL: {change.default_ttl_s:.0f}s")
        for name, kind, description in change.describe_params():
            click.echo(f"    --param {name}=...  ({kind}) {description}")
        click.echo()


@faults_group.command("active")
@click.option(
    "--show-drill",
    is_flag=True,
    help="also list the changes of a running drill (they give its scenario away)",
)
def active_command(show_drill: bool) -> None:
    """Changes not yet reverted, with their remaining TTL. A running drill's changes are
    hidden unless --show-drill is given: the learner is investigating them."""
    from faults import active_handles

    ctx = _context()
    _reap(ctx)
    handles = active_handles(ctx)
    drill = [h for h in handles if h.source.startswith("drill:")]
    shown = handles if show_drill else [h for h in handles if h not in drill]
    if drill and not show_drill:
        click.echo(
            f"a drill is running ({len(drill)} change(s) of it hidden; "
            "`sandbox faults active --show-drill` lists them and spoils the drill)"
        )
    elif not handles:
        click.echo("no active fault")
    for handle in shown:
        click.echo(_describe(handle))


@faults_group.command("inject")
@click.argument("name")
@click.option(
    "--param",
    "-p",
    "pairs",
    multiple=True,
    help="name=value (repeat); values are JSON when they parse",
)
@click.option(
    "--ttl",
    "ttl_s",
    type=float,
    default=None,
    help="seconds after which it reverts itself (default: per fault)",
)
def inject_command(name: str, pairs: tuple[str, ...], ttl_s: float | None) -> None:
    """Inject fault NAME, e.g. `sandbox faults inject retriever-latency -p median_s=0.8`."""
    from faults import FaultError, inject

    ctx = _context()
    _reap(ctx)
    params = dict(parse_param(pair) for pair in pairs)
    try:
        handle = inject(ctx, name, params, ttl_s=ttl_s, source="cli")
    except FaultError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"injected {handle.id} (reverts itself in {handle.ttl_s:.0f}s; undo: sandbox faults revert {handle.id})"
    )


@faults_group.command("revert")
@click.argument("handle_id", required=False)
@click.option("--all", "revert_all", is_flag=True, help="revert every active change")
def revert_command(handle_id: str | None, revert_all: bool) -> None:
    """Revert one change by id, or all of them with --all."""
    from faults import FaultError, active_handles, reset, revert

    ctx = _context()
    _reap(ctx)
    if revert_all == bool(handle_id):
        live = active_handles(ctx)
        listing = "\n".join(_describe(h) for h in live) or "no active fault"
        raise click.UsageError(f"give one handle id or --all. Active:\n{listing}")
    if revert_all:
        _, errors = reset(ctx)
        if errors:
            raise click.ClickException("; ".join(errors))
        return
    try:
        revert(ctx, str(handle_id))
    except FaultError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("reset")
def reset_command() -> None:
    """Revert every active fault and operator change, and stop a drill's traffic (also after a
    crashed or killed drill)."""
    from faults import reset
    from sandbox.drill.traffic import stop_traffic
    from sandbox.runtime.base import ServiceState

    ctx = _context()
    reverted, errors = reset(ctx)
    # A killed drill leaves its load generator running (service `loadgen`): it is the drill's,
    # never the stack's, so a reset stops it too.
    traffic = ctx.runtime.status("loadgen").state is ServiceState.RUNNING
    if traffic:
        stop_traffic(ctx.settings, ctx.runtime, "loadgen")
        click.echo("stopped the drill's load generator")
    if not reverted and not errors:
        if not traffic:
            click.echo("nothing to reset: no active fault")
        return
    for message in errors:
        click.secho(f"could not revert: {message}", fg="red", err=True)
    if errors:
        raise SystemExit(1)
    click.echo(f"reset: {len(reverted)} change(s) reverted")


COMMANDS = [faults_group, reset_command]
