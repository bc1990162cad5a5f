"""Command-line options that more than one command takes, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

__all__ = ["DRILL_MODES", "mode_option"]

F = TypeVar("F", bound=Callable[..., object])

# The values of sandbox.drill.result.Mode, spelled here so the CLI starts without the drill.
DRILL_MODES = ("interactive", "auto")


def mode_option(help: str) -> Callable[[F], F]:
    """``--mode``: interactive (a person answers) or auto (the reference answers)."""
    return click.option(
        "--mode",
        type=click.Choice(DRILL_MODES),
        default="interactive",
        show_default=True,
        help=help,
    )
