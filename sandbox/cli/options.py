"""Command-line options that more than one command takes, declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

__all__ = ["DRILL_MODES", "mode_option", "path_option"]

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


def path_option(*param_decls: str, help: str) -> Callable[[F], F]:
    """An optional path: a ``Path`` when given, ``None`` when not (the command's default then
    depends on the settings, e.g. the run directory, so ``help`` says what it is)."""
    return click.option(*param_decls, type=click.Path(path_type=Path), default=None, help=help)
