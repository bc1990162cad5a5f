"""`sandbox dashboards render|generate`: see the dashboards without Grafana, and regenerate them."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import click

from sandbox.cli.options import path_option
from sandbox.settings import REPO_ROOT, load_settings

__all__ = ["COMMANDS", "dashboards", "parse_since"]


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``2h`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r}: expected a duration like 90s, 15m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@click.group()
def dashboards() -> None:
    """The Grafana dashboards: render them from live Prometheus data, or regenerate their JSON."""


@dashboards.command()
@click.option(
    "--since",
    default="15m",
    show_default=True,
    help="window to draw, ending now (e.g. 90s, 15m, 2h)",
)
@click.option(
    "--dashboard",
    "names",
    multiple=True,
    help="dashboard to draw (overview, engine, rag, rollout, capacity); repeat for more; default all",
)
@path_option("--out", help="output folder (default: <run_dir>/dashboards)")
def render(since: str, names: tuple[str, ...], out: Path | None) -> None:
    """Draw dashboards as PNG panels and one HTML page each, from the running Prometheus."""
    from sandbox import timeline
    from sandbox.render import dashboard_names, render_dashboard

    settings = load_settings()
    end = time.time()
    start = end - parse_since(since)
    chosen = list(names) or dashboard_names()
    unknown = sorted(set(chosen) - set(dashboard_names()))
    if unknown:
        raise click.BadParameter(
            f"unknown dashboard {', '.join(unknown)}; known: {', '.join(dashboard_names())}",
            param_hint="--dashboard",
        )
    out = out or settings.run_dir / "dashboards"
    # Timeline events of the run directory (deploys, faults, drill steps) become annotations.
    marks = [
        {"time": e["ts"], "text": e["kind"]}
        for e in timeline.read(settings.run_dir, since=start, until=end)
    ][-40:]
    for name in chosen:
        try:
            result = render_dashboard(
                name, settings.prometheus_url, start, end, out_dir=out, annotations=marks
            )
        except Exception as exc:
            click.echo(f"{name}: failed: {type(exc).__name__}: {exc}", err=True)
            continue
        empty = [p.title for p in result.panels if p.series == 0]
        errors = [e for p in result.panels for e in p.errors]
        click.echo(
            f"{name}: {len(result)} panels -> {result.html}"
            + (f" ({len(empty)} without data)" if empty else "")
            + (f"; {len(errors)} query errors, first: {errors[0]}" if errors else "")
        )


@dashboards.command()
@click.option(
    "--check", is_flag=True, help="only compare; exit 1 when the checked-in JSON is stale"
)
def generate(check: bool) -> None:
    """Regenerate dashboards/*.json from the Python dashboards (what `make dashboards` runs)."""
    if (
        str(REPO_ROOT) not in sys.path
    ):  # the dashboards package lives beside sandbox/, not inside it
        sys.path.insert(0, str(REPO_ROOT))
    from dashboards.generate import main as generate_main

    code = generate_main(["--check"] if check else [])
    if code:
        raise SystemExit(code)


COMMANDS = [dashboards]
