"""The supervisor a local service runs under: ``python -m sandbox.runtime.supervise``.

It starts the real command as its child, forwards SIGTERM/SIGINT to it, and when the child ends
writes ``<name>.exit`` (exit code and time) next to the pid file. That file is how ``status``
tells a crash (the child exited on its own) from a service that was never started, long after
the ``sandbox up`` process that launched it is gone. It does not restart the child: in a drill
a crash must stay visible.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["exit_file", "main"]


def exit_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.exit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--cpus", default="", help="comma-separated CPU cores the command may run on"
    )
    parser.add_argument("--nice", type=int, default=0, help="nice value for the command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")

    if args.cpus:
        # Set on ourselves before the fork: the child and everything it forks inherit it.
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})

    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited like the affinity
        except PermissionError:
            print(
                f"supervise: cannot set nice {args.nice} without root; running at the default",
                file=sys.stderr,
                flush=True,
            )

    # The child inherits stdout/stderr (the service's log file) and our process group, so
    # stopping the group stops the child and anything it forks (vLLM's engine-core process).
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    record = {"name": args.name, "exit_code": code, "pid": child.pid, "at": time.time()}
    exit_file(args.state_dir, args.name).write_text(json.dumps(record) + "\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
