"""The one way the sandbox waits for something: bounded in time, with progress, and an error
that says what it waited for and the last reason it was not there yet.

``wait_until`` returns as soon as the check is satisfied; ``hold_s`` makes it wait until the
check has been satisfied *without interruption* for that long (a steady baseline, a recovery
that holds), which is the same loop with a memory of when the streak began.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sandbox.exceptions import SandboxError

__all__ = ["NotYet", "Progress", "WaitTimeout", "wait_until"]

T = TypeVar("T")
Progress = Callable[[str], None]  # how a long step says what it waits for (print, a log)


class WaitTimeout(SandboxError):
    """What was awaited did not happen in time."""


@dataclass(frozen=True)
class NotYet:
    """What a check returns while the condition is not met, with the reason (shown in progress)."""

    reason: str = ""


def wait_until(
    check: Callable[[], T | NotYet],
    what: str,
    timeout_s: float,
    *,
    interval_s: float = 0.5,
    hold_s: float = 0.0,
    progress: Progress | None = None,
    report_every_s: float = 5.0,
    fail: Callable[[str], Exception] = WaitTimeout,
) -> T:
    """Call ``check`` until it returns a value that is not ``NotYet`` (and, with ``hold_s``, keeps
    doing so for that long); raise ``fail(message)`` after ``timeout_s``. A check that raises
    aborts the wait (a process that exited will not become ready)."""
    start = time.monotonic()
    last_report = start
    held_since: float | None = None
    reason = ""
    while True:
        result = check()
        now = time.monotonic()
        if isinstance(result, NotYet):
            reason = result.reason
            held_since = None
        else:
            held_since = now if held_since is None else held_since
            if now - held_since >= hold_s:
                return result
            reason = f"held {now - held_since:.0f} of {hold_s:.0f} s"
        waited = now - start
        if waited >= timeout_s:
            detail = f": {reason}" if reason else ""
            raise fail(f"{what}: not reached after {timeout_s:.0f} s{detail}")
        if progress is not None and now - last_report >= report_every_s:
            last_report = now
            progress(f"waiting for {what} ({waited:.0f} s){': ' + reason if reason else ''}")
        time.sleep(min(interval_s, max(0.0, timeout_s - waited)))
