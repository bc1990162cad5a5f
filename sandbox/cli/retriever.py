"""`sandbox retriever search|fault`: talk to the running retriever over HTTP."""

from __future__ import annotations

import json
from typing import Any

import click

from sandbox.settings import load_settings

__all__ = ["COMMANDS", "retriever"]


def _client(url: str | None) -> Any:
    from sandbox.retriever.client import RetrieverClient

    settings = load_settings()
    return RetrieverClient(url or settings.url(settings.retriever_port))


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group()
@click.option(
    "--url",
    default=None,
    help="retriever base URL (default: from SANDBOX_HOST/SANDBOX_RETRIEVER_PORT)",
)
@click.pass_context
def retriever(ctx: click.Context, url: str | None) -> None:
    """The RAG retriever: search it, inject or clear latency faults."""
    ctx.obj = url


@retriever.command()
@click.argument("query")
@click.option("-k", default=5, show_default=True, type=click.IntRange(1), help="passages to return")
@click.option("--json", "as_json", is_flag=True, help="print the raw response")
@click.pass_obj
def search(url: str | None, query: str, k: int, as_json: bool) -> None:
    """Search the notes for QUERY and show passages with scores and phase timings."""
    from sandbox.retriever.client import RetrieverClientError

    try:
        with _client(url) as client:
            result = client.search(query, k)
    except RetrieverClientError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    timings = result["timings"]
    click.echo(
        "timings: " + ", ".join(f"{phase} {timings[phase] * 1000:.1f} ms" for phase in timings)
    )
    for rank, passage in enumerate(result["passages"], 1):
        click.echo(f"\n{rank}. {passage['score']:.3f}  {passage['source']}")
        text = passage["text"].strip().replace("\n", " ")
        click.echo(f"   {text[:300]}{'…' if len(text) > 300 else ''}")


@retriever.group()
def fault() -> None:
    """Add latency to one retrieval part (embed, search, rerank), or remove it."""


PHASE = click.Choice(["embed", "search", "rerank"])


@fault.command("set")
@click.argument("phase", type=PHASE)
@click.argument("kind", type=click.Choice(["fixed", "jitter", "heavy_tail"]))
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="a parameter of the kind, e.g. delay_s=0.2 (fixed), mean_s/jitter_s (jitter), "
    "median_s/sigma or distribution=pareto/alpha, cap_s (heavy_tail)",
)
@click.option(
    "--ttl",
    "ttl_s",
    type=float,
    default=None,
    help="clear the fault by itself after this many seconds",
)
@click.pass_obj
def fault_set(
    url: str | None, phase: str, kind: str, params: tuple[str, ...], ttl_s: float | None
) -> None:
    """Make PHASE slower by a KIND delay (replaces that phase's current fault)."""
    from sandbox.retriever.client import RetrieverClientError

    parsed: dict[str, Any] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        try:
            parsed[name] = float(value)
        except ValueError:
            parsed[name] = value  # e.g. distribution=pareto; the server validates
    try:
        with _client(url) as client:
            answer = client.set_fault(phase, kind, parsed, ttl_s)
    except RetrieverClientError as exc:
        _fail(exc)
    active = answer["fault"]
    click.echo(
        f"{phase}: {kind} {active['params']} (mean +{active['mean_delay_s'] * 1000:.1f} ms)"
        + (f", clears in {ttl_s:g} s" if ttl_s else "")
    )


@fault.command("clear")
@click.argument("phase", type=PHASE, required=False)
@click.pass_obj
def fault_clear(url: str | None, phase: str | None) -> None:
    """Remove PHASE's fault, or every fault without PHASE."""
    from sandbox.retriever.client import RetrieverClientError

    try:
        with _client(url) as client:
            cleared = client.clear_fault(phase)
    except RetrieverClientError as exc:
        _fail(exc)
    click.echo(f"cleared: {', '.join(cleared)}" if cleared else "no fault was active")


@fault.command("show")
@click.pass_obj
def fault_show(url: str | None) -> None:
    """List the active faults."""
    from sandbox.retriever.client import RetrieverClientError

    try:
        with _client(url) as client:
            faults = client.faults()
    except RetrieverClientError as exc:
        _fail(exc)
    if not faults:
        click.echo("no fault active")
    for phase, active in faults.items():
        expires = active["expires_in_s"]
        click.echo(
            f"{phase}: {active['kind']} {active['params']} mean +{active['mean_delay_s'] * 1000:.1f} ms"
            + (f", clears in {expires:.0f} s" if expires is not None else "")
        )


COMMANDS = [retriever]
