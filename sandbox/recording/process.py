"""The processes a replay starts (Prometheus, Alertmanager): ours alone, and never left behind.

Each child is started with ``PR_SET_PDEATHSIG`` = SIGTERM, so the kernel stops it when the
replaying process dies, even by SIGKILL; it is stopped by its own pid otherwise (SIGTERM, then
SIGKILL after a grace period). Its output goes to a log file whose tail is quoted when it fails.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from sandbox.exceptions import SandboxError

__all__ = ["Child", "ReplayError", "start_child"]

_PR_SET_PDEATHSIG = 1


class ReplayError(SandboxError):
    """A replay cannot start or run (a binary is missing, a process failed, a port is taken)."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Child:
    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.process, self.log = name, process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, url: str, timeout_s: float) -> None:
        """Poll ``url`` until it answers 200; fail with the log's tail when the process ends."""
        deadline = time.monotonic() + timeout_s
        last = ""
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ReplayError(
                        f"{self.name} exited with {self.process.returncode} before it was ready; "
                        f"its log ({self.log}):\n{self.log_tail()}"
                    )
                try:
                    if http.get(url).status_code == 200:
                        return
                    last = "not ready"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.1)
        self.stop()
        raise ReplayError(f"{self.name} not ready at {url} after {timeout_s:.0f} s ({last})")

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(5)


def start_child(
    name: str, argv: Sequence[str], log: Path, *, on_start: Callable[[int], None] | None = None
) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # prctl must run in the child
            )
        except FileNotFoundError as exc:
            raise ReplayError(
                f"{argv[0]}: not found (run `make setup`, or set SANDBOX_PROMETHEUS_BIN / "
                "SANDBOX_ALERTMANAGER_BIN)"
            ) from exc
    if on_start:
        on_start(process.pid)
    return Child(name, process, log)
