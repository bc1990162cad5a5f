"""The supervisor a local service runs under: ``python -m sandbox.runtime.supervise``.

It starts the real command as its child, forwards SIGTERM/SIGINT to it, and when the child ends
writes ``<name>.exit`` (exit code and time) next to the pid file. That file is how ``status``
tells a crash (the child exited on its own) from a service that was never started, long after
the ``sandbox up`` process that launched it is gone. It does not restart the child: in a drill
a crash must stay visible.

With ``--child-nice`` it also lowers the priority of every process the child starts, every
couple of seconds for the child's life (vLLM starts its engine core and CPU worker after a
while, and they start threads later still), and leaves the child's own priority alone. With
``--realtime`` the child runs in the lowest real-time class (see ``ServiceSpec.realtime``); with
both, only the child's first thread does, and what it starts begins in the normal class.
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

from sandbox.runtime.procfs import group_members

__all__ = ["exit_file", "main", "renice_process"]

# How often --child-nice looks for new processes and threads to renice.
RENICE_EVERY_S = 2.0
# --realtime: the lowest real-time priority, so any real-time task of the system's comes first.
REALTIME_PRIORITY = 1


def exit_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.exit"


def renice_process(pid: int, nice: int) -> None:
    """Set ``nice`` on every thread of ``pid``: Linux keeps a nice value per thread, and a thread
    started before the change keeps the old one."""
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        tid = int(task.name)
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) != nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (ProcessLookupError, PermissionError):
            continue  # the thread ended, or a raise needs root (the default priority then)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--cpus", default="", help="comma-separated CPU cores the command may run on"
    )
    parser.add_argument("--nice", type=int, default=0, help="nice value for the command")
    parser.add_argument(
        "--child-nice",
        type=int,
        default=0,
        help="nice value for the processes the command starts (not the command itself)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run the command in the lowest real-time scheduling class (SCHED_RR, priority 1)",
    )
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

    realtime_child = args.realtime and bool(args.child_nice)
    if args.realtime and not realtime_child:
        # Inherited like the nice value. The supervisor itself only waits, so it costs nothing
        # to be real-time too; the kernel still keeps 5% of every second for normal tasks.
        _enter_realtime(os.SCHED_RR)

    # The child inherits stdout/stderr (the service's log file) and our process group, so
    # stopping the group stops the child and anything it forks (vLLM's engine-core process).
    # A real-time child with --child-nice is vLLM's API server: its engine core computes (and, in
    # vLLM's default CPU layout, it and its worker poll each other), so it must stay in the
    # normal class: the class is set in the child alone and is not passed on to its processes
    # and threads (SCHED_RESET_ON_FORK).
    child = subprocess.Popen(
        command,
        preexec_fn=(
            (lambda: _enter_realtime(os.SCHED_RR | os.SCHED_RESET_ON_FORK))
            if realtime_child
            else None
        ),
    )

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = _wait(child, args.child_nice)
    record = {"name": args.name, "exit_code": code, "pid": child.pid, "at": time.time()}
    exit_file(args.state_dir, args.name).write_text(json.dumps(record) + "\n")
    return code if code >= 0 else 128 - code


def _enter_realtime(policy: int) -> None:
    try:
        os.sched_setscheduler(0, policy, os.sched_param(REALTIME_PRIORITY))
    except PermissionError:
        print(
            "supervise: cannot use the real-time class without root; running at nice "
            f"{os.getpriority(os.PRIO_PROCESS, 0)}",
            file=sys.stderr,
            flush=True,
        )


def _wait(child: subprocess.Popen[bytes], child_nice: int) -> int:
    if child_nice and os.getpgrp() != os.getpid():
        # Not a group leader (started by hand, not by the runtime): the group is somebody else's.
        print("supervise: not a process-group leader; --child-nice ignored", file=sys.stderr)
        child_nice = 0
    if not child_nice:
        return child.wait()
    # The child runs in our process group (the runtime made us its leader), and so does
    # everything it starts: those are the group's members other than the two of us.
    ours = {os.getpid(), child.pid}
    while True:
        for pid in group_members(os.getpgrp()):
            if pid not in ours:
                renice_process(pid, child_nice)
        try:
            return child.wait(timeout=RENICE_EVERY_S)
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    sys.exit(main())
