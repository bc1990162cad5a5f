"""``python -m sandbox.loadgen PROFILE``: the stack's ``loadgen`` service (JSON log lines).

Runs one profile until its duration (or request budget) ends or SIGTERM/SIGINT arrives, with
``/metrics`` and the control API on ``--port`` (default ``SANDBOX_LOADGEN_PORT``); writes
``requests.jsonl`` and ``summary.json`` to ``--out``. ``sandbox load run`` is the same run for a
person at a terminal.
"""

from __future__ import annotations

import json
import logging

import click

from sandbox.loadgen.run_options import RunFlags, run_options

__all__ = ["main"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.option("--host", default=None, help="address of the control API and /metrics [SANDBOX_HOST]")
def main(run: RunFlags, host: str | None) -> None:
    """Send a load profile's traffic (service mode: progress as JSON log lines)."""
    from sandbox.loadgen.service import json_progress, run_service
    from sandbox.settings import load_settings
    from sandbox.telemetry import configure_logging

    configure_logging("loadgen")
    loaded, options = run.load(load_settings(), host=host)
    options.run.progress = json_progress(10.0)
    log = logging.getLogger("sandbox.loadgen")
    log.info(
        "starting",
        extra={
            "profile": loaded.name,
            "target": options.run.target,
            "port": options.port,
            "out": str(options.run.out_dir),
        },
    )
    summary = run_service(loaded, options)
    log.info("finished", extra={"summary": json.dumps(summary["overall"])})


if __name__ == "__main__":
    main()
