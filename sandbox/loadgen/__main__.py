"""``python -m sandbox.loadgen PROFILE``: the stack's ``loadgen`` service (JSON log lines).

Runs one profile until its duration (or request budget) ends or SIGTERM/SIGINT arrives, with
``/metrics`` and the control API on ``--port`` (default ``SANDBOX_LOADGEN_PORT``); writes
``requests.jsonl`` and ``summary.json`` to ``--out``. ``sandbox load run`` is the same run for a
person at a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from sandbox.loadgen.run_options import run_options

__all__ = ["main"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.option("--host", default=None, help="address of the control API and /metrics [SANDBOX_HOST]")
def main(
    profile: str,
    target: str | None,
    host: str | None,
    port: int | None,
    duration: float | None,
    max_requests: int | None,
    seed: int | None,
    rate_scale: float,
    out: Path | None,
) -> None:
    """Send a load profile's traffic (service mode: progress as JSON log lines)."""
    from sandbox.loadgen.profile import ProfileError, load_profile, scale_rates
    from sandbox.loadgen.service import ServiceOptions, default_out_dir, json_progress, run_service
    from sandbox.loadgen.target import default_target
    from sandbox.settings import load_settings
    from sandbox.telemetry import configure_logging

    configure_logging("loadgen")
    settings = load_settings()
    try:
        loaded = scale_rates(load_profile(profile), rate_scale)
    except ProfileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    options = ServiceOptions(
        target=target or default_target(settings),
        host=host or settings.host,
        port=settings.loadgen_port if port is None else port,
        duration_s=duration,
        max_requests=max_requests,
        seed=seed,
        out_dir=out or default_out_dir(settings.run_dir, loaded.name),
        progress=json_progress(10.0),
    )
    log = logging.getLogger("sandbox.loadgen")
    log.info(
        "starting",
        extra={
            "profile": loaded.name,
            "target": options.target,
            "port": options.port,
            "out": str(options.out_dir),
        },
    )
    summary = run_service(loaded, options)
    log.info("finished", extra={"summary": json.dumps(summary["overall"])})


if __name__ == "__main__":
    main()
