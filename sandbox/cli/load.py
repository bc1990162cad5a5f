"""`sandbox load run|set|show|profiles`: send a load profile's traffic, and change it while it runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import httpx

from sandbox.admin_paths import LOADGEN_PATHS
from sandbox.loadgen.run_options import RunFlags, run_options
from sandbox.openai_errors import error_message
from sandbox.settings import load_settings

__all__ = ["COMMANDS"]


@click.group()
def load() -> None:
    """The load generator: open-loop LLM traffic with client-side TTFT, TPOT and E2E."""


@load.command()
@run_options
def run(flags: RunFlags) -> None:
    """Run PROFILE (a shipped profile's name or a path to a YAML file); print the summary.

    Ctrl-C stops the run: requests in flight are cancelled and the summary is still written.
    """
    from sandbox.deploy.targets import write_job_targets
    from sandbox.loadgen.component import loadgen_component
    from sandbox.loadgen.results import format_summary
    from sandbox.loadgen.service import format_progress, run_service

    settings = load_settings()
    loaded, options = flags.load(settings)
    tty = sys.stderr.isatty()
    shown = [-1e9]

    def progress(snap: dict[str, Any]) -> None:
        line = format_progress(snap)
        if tty:  # one line, redrawn in place
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
        elif snap.get("elapsed_s", 0) - shown[0] >= 10:  # a log: a line every 10 s
            shown[0] = snap.get("elapsed_s", 0)
            click.echo(line, err=True)

    # On the stack's own port, Prometheus scrapes this run like the drill's generator (job loadgen).
    register = options.port == settings.loadgen_port and settings.targets_dir.is_dir()
    registered: list[bool] = []

    def ready(control: Any) -> None:
        click.echo(
            f"profile {loaded.name} -> {options.run.target}; control and /metrics on {control.url}",
            err=True,
        )
        if register:  # only once the port is ours: never unregister another generator
            write_job_targets(settings, "loadgen", loadgen_component(loaded.name).scrape(settings))
            registered.append(True)

    options.run.progress, options.on_ready = progress, ready
    try:
        summary = run_service(loaded, options)
    except OSError as exc:
        click.echo(
            f"error: {exc} (is another load generator using port {options.port}? try --port 0)",
            err=True,
        )
        sys.exit(1)
    finally:
        if registered:
            write_job_targets(settings, "loadgen", [])
    if tty:
        sys.stderr.write("\n")
    click.echo(format_summary(summary))
    click.echo(f"per-request log and summary: {options.run.out_dir}")


def _control_url(url: str | None) -> str:
    if url:
        return url.rstrip("/")
    settings = load_settings()
    return settings.url(settings.loadgen_port)


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    try:
        response = httpx.request(method, url, json=body, timeout=5.0)
    except httpx.HTTPError as exc:
        click.echo(
            f"error: no load generator answers at {url} ({type(exc).__name__}); is one running?",
            err=True,
        )
        sys.exit(1)
    if response.status_code != 200:
        click.echo(f"error: {error_message(response) or response.text}", err=True)
        sys.exit(2)
    return response.json()


def _length(value: str | None) -> int | dict[str, Any] | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(
            f'a number of tokens or a JSON distribution like \'{{"dist": "uniform", "min": 10, "max": 20}}\' ({exc})'
        ) from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"a number of tokens or a JSON object, not {value!r}")
    return parsed


@load.command(name="set")
@click.argument("tenant")
@click.option("--on/--off", "enabled", default=None, help="switch the tenant on or off")
@click.option("--rate", type=float, default=None, help="its base rate, requests per second")
@click.option("--users", type=int, default=None, help="users of a closed-loop tenant")
@click.option("--prompt-tokens", default=None, help="a number, or a JSON distribution object")
@click.option("--output-tokens", default=None, help="a number, or a JSON distribution object")
@click.option(
    "--rag-share", type=float, default=None, help="share of requests that ask for retrieval"
)
@click.option(
    "--url",
    default=None,
    help="the generator's control URL [http://SANDBOX_HOST:SANDBOX_LOADGEN_PORT]",
)
def set_tenant(
    tenant: str,
    enabled: bool | None,
    rate: float | None,
    users: int | None,
    prompt_tokens: str | None,
    output_tokens: str | None,
    rag_share: float | None,
    url: str | None,
) -> None:
    """Change TENANT of the running generator, e.g. `sandbox load set long_context --on --rate 0.5`."""
    body = {
        k: v
        for k, v in {
            "enabled": enabled,
            "rate_per_s": rate,
            "users": users,
            "prompt_tokens": _length(prompt_tokens),
            "output_tokens": _length(output_tokens),
            "rag_share": rag_share,
        }.items()
        if v is not None
    }
    if not body:
        raise click.UsageError(
            "nothing to change: give --on/--off, --rate, --users, --prompt-tokens, --output-tokens or --rag-share"
        )
    click.echo(
        json.dumps(
            _call("PUT", _control_url(url) + LOADGEN_PATHS.tenant.format(tenant=tenant), body),
            indent=1,
        )
    )


@load.command()
@click.option(
    "--url",
    default=None,
    help="the generator's control URL [http://SANDBOX_HOST:SANDBOX_LOADGEN_PORT]",
)
def show(url: str | None) -> None:
    """The running generator's progress and tenants."""
    base = _control_url(url)
    click.echo(
        json.dumps(
            {
                "status": _call("GET", base + LOADGEN_PATHS.status),
                "tenants": _call("GET", base + LOADGEN_PATHS.tenants),
            },
            indent=1,
        )
    )


@load.command()
def profiles() -> None:
    """The shipped profiles."""
    from sandbox.loadgen.profile import load_profile, profile_names

    for name in profile_names():
        click.echo(f"{name:<22}{load_profile(name).description}")


COMMANDS = [load]
