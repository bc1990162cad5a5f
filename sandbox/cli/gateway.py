"""`sandbox gateway status|weights|shadow|admission`: look at and steer the running gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sandbox.settings import load_settings

if TYPE_CHECKING:
    from sandbox.gateway.admin import GatewayAdmin

__all__ = ["COMMANDS", "gateway"]


def _admin(url: str | None) -> GatewayAdmin:
    from sandbox.gateway.admin import GatewayAdmin

    settings = load_settings()
    return GatewayAdmin(url or settings.url(settings.gateway_port))


def _run(url: str | None, action: Callable[[GatewayAdmin], dict[str, Any]]) -> dict[str, Any]:
    from sandbox.gateway.admin import GatewayAdminError

    try:
        with _admin(url) as admin:
            return action(admin)
    except GatewayAdminError as exc:
        raise click.ClickException(str(exc)) from exc


def _show(state: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    engines = Table(title="engines", title_justify="left")
    for column in ("name", "version", "url", "in rotation", "failures", "last error"):
        engines.add_column(column)
    for e in state["engines"]:
        engines.add_row(
            e["name"],
            e["version"],
            e["url"],
            "[green]yes[/]" if e["ready"] else "[red]no[/]",
            str(e["failures"]),
            e["last_error"] or "",
        )
    console.print(engines)
    total = sum(state["weights"].values()) or 1.0
    console.print(
        "weights: "
        + ", ".join(
            f"{v}={w:g} ({100 * w / total:.0f}%)" for v, w in sorted(state["weights"].items())
        )
    )
    shadow = state["shadow"]
    console.print(
        f"shadow: {shadow['version']} {100 * shadow['share']:.0f}%" if shadow else "shadow: off"
    )
    a = state["admission"]
    console.print(
        f"admission: {'on' if a['enabled'] else 'off'}; in flight {a['in_flight_sequences']}/{a['max_sequences']} sequences, "
        f"{a['in_flight_tokens']}/{a['max_in_flight_tokens']} tokens; queued {a['queued']}/{a['max_queue']} "
        f"(timeout {a['queue_timeout_s']:g} s)"
    )
    rag = state["rag"]
    console.print(
        f"rag: retriever {rag['retriever_url']}, k={rag['k']}, timeout {rag['timeout_s']:g} s"
    )


@click.group()
@click.option(
    "--url", default=None, help="gateway base URL (default: from SANDBOX_HOST/SANDBOX_GATEWAY_PORT)"
)
@click.pass_context
def gateway(ctx: click.Context, url: str | None) -> None:
    """The gateway: routing weights, shadow traffic, admission control."""
    ctx.obj = url


@gateway.command()
@click.pass_obj
def status(url: str | None) -> None:
    """Engines in rotation, weights, shadow, admission limits and usage."""
    _show(_run(url, lambda admin: admin.state()))


@gateway.command()
@click.argument("pairs", nargs=-1, required=True)
@click.pass_obj
def weights(url: str | None, pairs: tuple[str, ...]) -> None:
    """Set routing weights, e.g. `weights stable=90 canary=10` (versions not named get 0)."""
    from sandbox.gateway.admin import GatewayAdminError, parse_weights

    try:
        parsed = parse_weights(pairs)
    except GatewayAdminError as exc:
        raise click.BadParameter(str(exc)) from exc
    _show(_run(url, lambda admin: admin.set_weights(parsed)))


@gateway.command()
@click.argument("version", required=False)
@click.argument("share", required=False, type=click.FloatRange(0, 1))
@click.option("--off", is_flag=True, help="stop mirroring")
@click.pass_obj
def shadow(url: str | None, version: str | None, share: float | None, off: bool) -> None:
    """Mirror SHARE (0-1) of requests to VERSION, e.g. `shadow canary 0.2`; `shadow --off` stops."""
    if off:
        _show(_run(url, lambda admin: admin.set_shadow(None)))
        return
    if version is None or share is None:
        raise click.UsageError("give VERSION and SHARE, or --off")
    _show(_run(url, lambda admin: admin.set_shadow(version, share)))


@gateway.command()
@click.option("--on/--off", "enabled", default=None, help="turn admission control on or off")
@click.option(
    "--tokens", type=click.IntRange(1), help="in-flight token budget (prompt + max_tokens)"
)
@click.option("--sequences", type=click.IntRange(1), help="concurrent requests admitted")
@click.option("--queue", type=click.IntRange(0), help="requests that may wait (0: reject at once)")
@click.option(
    "--queue-timeout", type=click.FloatRange(min=0, min_open=True), help="longest wait, seconds"
)
@click.pass_obj
def admission(
    url: str | None,
    enabled: bool | None,
    tokens: int | None,
    sequences: int | None,
    queue: int | None,
    queue_timeout: float | None,
) -> None:
    """Change admission control, e.g. `admission --on --sequences 8 --queue 16`."""
    fields = {
        "enabled": enabled,
        "max_in_flight_tokens": tokens,
        "max_sequences": sequences,
        "max_queue": queue,
        "queue_timeout_s": queue_timeout,
    }
    _show(
        _run(
            url,
            lambda admin: admin.set_admission(**{k: v for k, v in fields.items() if v is not None}),
        )
    )


COMMANDS = [gateway]
