"""The `sandbox` command line.

Each module in this package adds its commands by defining ``COMMANDS``, a list of click
commands or groups; ``main`` collects them, so a new area adds a module and touches nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from sandbox.settings import SettingsError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """LLM-serving incident sandbox: a real vLLM stack, faults, drills."""


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register_commands()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
