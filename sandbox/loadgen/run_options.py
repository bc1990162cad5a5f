"""The command-line options of a load run, shared by ``sandbox load run`` (a person at a
terminal) and ``python -m sandbox.loadgen`` (the stack's service), so the two never drift: the
command receives them as one ``RunFlags``, which loads the profile and the run's options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import click

from sandbox.settings import Settings

if TYPE_CHECKING:
    from sandbox.loadgen.profile import Profile
    from sandbox.loadgen.service import ServiceOptions

__all__ = ["RunFlags", "run_options"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunFlags:
    """PROFILE and the options of ``_OPTIONS``, as given."""

    profile: str
    target: str | None
    port: int | None
    duration: float | None
    max_requests: int | None
    seed: int | None
    rate_scale: float
    out: Path | None

    def load(self, settings: Settings, host: str | None = None) -> tuple[Profile, ServiceOptions]:
        """The profile (its rates scaled) and the run's options, defaults from the settings;
        a profile that does not load exits with status 2 and its error."""
        from sandbox.loadgen.profile import ProfileError, load_profile, scale_rates
        from sandbox.loadgen.runner import RunOptions
        from sandbox.loadgen.service import ServiceOptions, default_out_dir
        from sandbox.loadgen.target import default_target

        try:
            loaded = scale_rates(load_profile(self.profile), self.rate_scale)
        except ProfileError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        run = RunOptions(
            target=self.target or default_target(settings),
            duration_s=self.duration,
            max_requests=self.max_requests,
            seed=self.seed,
            out_dir=self.out or default_out_dir(settings.run_dir, loaded.name),
        )
        port = settings.loadgen_port if self.port is None else self.port
        return loaded, ServiceOptions(run, host=host or settings.host, port=port)


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


def run_options(command: Callable[Concatenate[RunFlags, P], R]) -> Callable[P, R]:
    """PROFILE and the options of a run, given to ``command`` as its first argument, a
    ``RunFlags`` (applied in reverse, so --help lists them in order)."""

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> R:
        flags = RunFlags(**{name: kwargs.pop(name) for name in RunFlags.__dataclass_fields__})
        return command(flags, *args, **kwargs)

    decorated: Callable[P, R] = with_flags
    for decorate in reversed(_OPTIONS):
        decorated = decorate(decorated)
    return decorated
