"""One run of the generator as a program: profile in, control port up, summary out.

Shared by ``sandbox load run`` (a person at a terminal: a live one-line progress display) and
``python -m sandbox.loadgen`` (the stack's ``loadgen`` service: JSON log lines). SIGINT and
SIGTERM stop the run cleanly: requests in flight are cancelled (counted as ``cancelled``) and
the summary is still written. A second Ctrl-C is not needed and not waited for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.loadgen.control import ControlServer
from sandbox.loadgen.profile import Profile
from sandbox.loadgen.runner import Runner, RunOptions

__all__ = ["ServiceOptions", "default_out_dir", "format_progress", "run_service"]

log = logging.getLogger("sandbox.loadgen")


@dataclass
class ServiceOptions:
    """The run's own options, and where the service answers."""

    run: RunOptions
    host: str = "127.0.0.1"
    port: int = 0  # the control API and /metrics; 0 picks a free port
    on_ready: Callable[[ControlServer], None] | None = None


def default_out_dir(run_dir: Path, profile: str) -> Path:
    return run_dir / "loadgen" / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"


def format_progress(snap: dict[str, Any]) -> str:
    """The live one-line display: rate sent, in flight, errors, TTFT p95."""
    ttft = snap.get("ttft_p95_s")
    target = sum((snap.get("target_rate_per_s") or {}).values())
    return (
        f"{snap.get('elapsed_s', 0):>7.1f}s  sent {snap.get('sent', 0):>6} ({snap.get('sent_per_s', 0):.2f}/s, "
        f"target {target:.2f}/s)  in flight {snap.get('in_flight', 0):>4}  errors {snap.get('errors', 0):>4}  "
        f"dropped {snap.get('dropped', 0)}  TTFT p95 {'-' if ttft is None else f'{ttft * 1000:.0f} ms'}"
    )


def _event_loop_policy() -> None:
    # uvloop keeps its timers and socket work cheaper than asyncio's default loop: the schedule's
    # start-time error depends on how fast the loop turns.
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        pass


def run_service(profile: Profile, options: ServiceOptions) -> dict[str, Any]:
    """Run ``profile`` to the end (or a stop signal); return the summary (also written to out_dir)."""
    runner = Runner(profile, options.run)
    control = ControlServer(runner, options.host, options.port)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for sig, why in ((signal.SIGINT, "interrupt"), (signal.SIGTERM, "terminate")):
            loop.add_signal_handler(sig, runner.stop, True, why)
        if options.on_ready is not None:
            options.on_ready(control)
        return await runner.run()

    _event_loop_policy()
    try:
        summary = asyncio.run(main())
    finally:
        control.close()
        asyncio.set_event_loop_policy(None)
    if options.run.out_dir is not None:
        log.info("summary written", extra={"path": str(options.run.out_dir / "summary.json")})
    return summary


def json_progress(every_s: float = 10.0) -> Callable[[dict[str, Any]], None]:
    """Progress as a JSON log line (``message: progress``) every ``every_s``, for the service's log."""
    last = [-1e9]

    def emit(snap: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            log.info(
                "progress",
                extra={k: v for k, v in snap.items() if k != "state"}
                | {"run_state": snap.get("state")},
            )

    return emit
