"""`sandbox traces`: the slowest recent requests (or one trace) as phase waterfalls."""

from __future__ import annotations

from pathlib import Path

import click

from sandbox.cli.options import path_option
from sandbox.settings import load_settings

__all__ = ["COMMANDS", "traces"]


@click.command()
@click.option(
    "--limit", "-n", default=5, show_default=True, type=click.IntRange(1), help="how many requests"
)
@click.option(
    "--trace-id",
    default=None,
    help="show this trace only (32 hex digits, from a log line or exemplar)",
)
@click.option(
    "--within",
    default=900.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="only requests that ended this many seconds ago or less",
)
@path_option("--file", "path", help="spans file (default: <run_dir>/traces/spans.jsonl)")
def traces(limit: int, trace_id: str | None, within: float, path: Path | None) -> None:
    """Show the slowest recent requests from the local trace sink as phase waterfalls."""
    from rich.console import Console

    from sandbox.tracesink.reader import find_trace, slowest_requests
    from sandbox.tracesink.store import spans_path
    from sandbox.tracesink.waterfall import waterfall_table

    path = path or spans_path(load_settings().run_dir)
    if not path.exists():
        raise click.ClickException(
            f"no spans at {path}: is the stack up (the trace sink writes there)?"
        )
    console = Console()
    if trace_id:
        trace = find_trace(path, trace_id)
        if trace is None:
            raise click.ClickException(f"trace {trace_id} is not in {path}")
        console.print(waterfall_table(trace))
        return
    found = slowest_requests(path, limit=limit, within_s=within)
    if not found:
        raise click.ClickException(f"no request traces in the last {within:g} s in {path}")
    for trace in found:
        console.print(waterfall_table(trace))
        console.print()


COMMANDS = [traces]
