"""`sandbox up`, `sandbox status`, `sandbox down`: the local stack's life cycle."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from sandbox import stack
from sandbox.runtime import runtime_for
from sandbox.settings import load_settings

__all__ = ["COMMANDS"]


def _say(message: str) -> None:
    click.echo(f"[sandbox] {message}", err=True)


@click.command()
def up() -> None:
    """Start the stack (engine, gateway, retriever, trace sink, Prometheus, Alertmanager, console); wait until usable."""
    settings = load_settings()
    runtime = runtime_for(settings)
    _say(f"run directory {settings.run_dir}")
    try:
        rows = stack.up(settings, runtime, progress=_say)
    except stack.StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted: stopped what was started", err=True)
        sys.exit(130)
    _print_table(rows)
    click.echo(
        f"OpenAI base URL  {settings.url(settings.gateway_port)}/v1   (the gateway; model {settings.served_model_name!r})"
    )
    click.echo(f"Engine (direct)  {settings.engine_url}/v1")
    click.echo(f"Retriever        {settings.url(settings.retriever_port)}")
    click.echo(f"Prometheus       {settings.prometheus_url}")
    click.echo(f"Alertmanager     {settings.alertmanager_url}")
    click.echo(f"Console          {settings.console_url}   (dashboards, traces, the drill)")
    click.echo(f"Traces           sandbox traces   ({settings.run_dir / 'traces'})")
    click.echo(f"Logs             {settings.log_dir}")


@click.command()
def status() -> None:
    """Each component: state, pid, URL, ready or not and why. Exits 1 when any is not ready."""
    settings = load_settings()
    rows = stack.status(settings, runtime_for(settings))
    _print_table(rows)
    if not all(row.ready for row in rows):
        sys.exit(1)


@click.command()
def down() -> None:
    """Stop everything the sandbox started (safe to run twice, and after a crashed `up`)."""
    settings = load_settings()
    stopped = stack.down(settings, runtime_for(settings), progress=_say)
    if not stopped:
        _say("nothing was running")


def _print_table(rows: list[stack.ComponentStatus]) -> None:
    table = Table("component", "state", "pid", "url", "ready", "why not")
    for row in rows:
        table.add_row(
            row.name,
            row.state.value,
            str(row.pid or "-"),
            row.url,
            "[green]yes[/]" if row.ready else "[red]no[/]",
            row.why,
        )
    Console(width=160).print(table)


COMMANDS = [up, status, down]
