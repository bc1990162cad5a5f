"""The command-line options of a load run, shared by ``sandbox load run`` (a person at a
terminal) and ``python -m sandbox.loadgen`` (the stack's service), so the two never drift."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

__all__ = ["run_options"]

F = TypeVar("F", bound=Callable[..., object])

_OPTIONS = (
    click.argument("profile"),
    click.option(
        "--target",
        default=None,
        help="base URL of the OpenAI-compatible server [the default of sandbox.loadgen.target]",
    ),
    click.option(
        "--port",
        type=int,
        default=None,
        help="port of the control API and /metrics (0: any free port) [SANDBOX_LOADGEN_PORT]",
    ),
    click.option(
        "--duration", type=float, default=None, help="seconds to run [the profile's duration_s]"
    ),
    click.option(
        "--requests",
        "max_requests",
        type=int,
        default=None,
        help="stop after this many requests (with no --duration: only this bound)",
    ),
    click.option(
        "--seed",
        type=int,
        default=None,
        help="seed for arrivals, lengths and prompts (same seed, same schedule)",
    ),
    click.option(
        "--rate-scale",
        type=click.FloatRange(min=0.01, max=100.0),
        default=1.0,
        show_default=True,
        help="multiply every open-loop tenant's rate (a drill sizes its load to the engine's speed)",
    ),
    click.option(
        "--out",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="folder for requests.jsonl and summary.json [<run_dir>/loadgen/<time>-<profile>]",
    ),
)


def run_options(command: F) -> F:
    """PROFILE and the options of a run (applied in reverse, so --help lists them in order)."""
    for decorate in reversed(_OPTIONS):
        command = decorate(command)
    return command
