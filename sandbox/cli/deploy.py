"""`sandbox deploy`, `sandbox rollback`, `sandbox deployments`: engine versions as an operator rolls them out.

Each action is recorded on the drill's timeline (``<run_dir>/timeline.jsonl``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table

from sandbox.deploy import (
    Deployer,
    DeployError,
    HttpGatewayRouting,
    RoutingError,
    VersionError,
    load_versions,
)
from sandbox.deploy.rollout import Rollout
from sandbox.deploy.versions import DEFAULT_VERSIONS_FILE
from sandbox.runtime import runtime_for
from sandbox.settings import load_settings

__all__ = ["COMMANDS"]


def _say(message: str) -> None:
    click.echo(f"[deploy] {message}", err=True)


@contextmanager
def _deployer() -> Iterator[Deployer]:
    settings = load_settings()
    try:
        deployer = Deployer(
            settings, runtime_for(settings), HttpGatewayRouting(settings.url(settings.gateway_port))
        )
    except VersionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    with deployer:
        try:
            yield deployer
        except (DeployError, VersionError, RoutingError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.command()
@click.argument("version")
@click.option(
    "--weight",
    type=click.FloatRange(0, 100),
    required=True,
    help="percent of traffic for VERSION (the canary)",
)
@click.option(
    "--shadow",
    is_flag=True,
    help="mirror WEIGHT percent of requests to VERSION; its answers are discarded",
)
def deploy(version: str, weight: float, shadow: bool) -> None:
    """Run VERSION as the canary (from stack/versions.yaml) and route WEIGHT percent to it.

    The canary gets traffic only once it is ready. Deploying the running canary's version
    again only moves the weight; another version replaces it.
    """
    with _deployer() as deployer:
        started = time.monotonic()
        replica = Rollout(deployer).deploy(version, weight, shadow=shadow, progress=_say)
        how = f"mirrors {weight:g}% of requests" if shadow else f"takes {weight:g}% of traffic"
        click.echo(
            f"{version} is ready on {replica.url} ({replica.name}) and {how} "
            f"({time.monotonic() - started:.0f} s)"
        )


@click.command()
def rollback() -> None:
    """Send all traffic to stable, stop mirroring, drain and stop the canary."""
    with _deployer() as deployer:
        started = time.monotonic()
        stopped = Rollout(deployer).rollback(progress=_say)
        if not stopped:
            click.echo("no canary was running; all traffic goes to stable")
            return
        names = ", ".join(f"{r.name} ({r.version})" for r in stopped)
        click.echo(
            f"rolled back in {time.monotonic() - started:.0f} s: stopped {names}; all traffic to stable"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="the state file as JSON")
@click.option("--all", "show_all", is_flag=True, help="also replicas that have stopped or failed")
@click.option(
    "--versions", "show_versions", is_flag=True, help="list the versions that can be deployed"
)
def deployments(as_json: bool, show_all: bool, show_versions: bool) -> None:
    """Replicas by track and state, the routing weights, and the shadow."""
    if show_versions:
        for version in load_versions(DEFAULT_VERSIONS_FILE).values():
            click.echo(f"{version.name:20} {version.description}")
        return
    with _deployer() as deployer:
        deployer.poll()
        state = deployer.state()
        if as_json:
            click.echo(json.dumps(state.model_dump(mode="json"), indent=1))
            return
        table = Table("replica", "track", "version", "state", "url", "since", "why")
        if deployer.base_running():
            table.add_row(
                "engine",
                "stable",
                "stable",
                "ready",
                deployer.settings.engine_url,
                "-",
                "the stack's engine",
            )
        for replica in state.replicas:
            if replica.active or show_all:
                since = time.strftime("%H:%M:%S", time.localtime(replica.changed_at))
                table.add_row(
                    replica.name,
                    replica.track,
                    replica.version,
                    replica.state.value,
                    replica.url,
                    since,
                    replica.reason,
                )
        Console().print(table)
        weights = ", ".join(f"{k}={v:g}" for k, v in state.weights.items())
        shadow = ", ".join(f"{k} {v:.0%}" for k, v in (state.shadow or {}).items()) or "off"
        click.echo(f"weights: {weights}; shadow: {shadow}")


COMMANDS = [deploy, rollback, deployments]
