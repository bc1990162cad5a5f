"""Helpers the tests share: bounded polling and free ports. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["free_port", "poll_until"]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(
    check: Callable[[], T | None],
    description: str,
    timeout_s: float = 60.0,
    interval_s: float = 0.5,
) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``description`` and the
    last error when ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last_value = value
        except Exception as exc:  # noqa: BLE001 - reported below
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {description} ({detail})")
        time.sleep(interval_s)
