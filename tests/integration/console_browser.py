"""A real headless Chromium (Debian's) driven by Playwright: what the console's browser test and
bench/console_load.py share (their traffic comes from tests/integration/traffic.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["CHROMIUM_ARGS", "chromium_context", "chromium_path", "require_browser"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    """Debian's chromium and Playwright, or a skip saying what is missing (a failure in CI)."""
    missing = []
    path = chromium_path()
    if path is None:
        missing.append("chromium (Debian package)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip, dev extra)")
    if missing:
        reason = f"not installed: {', '.join(missing)} (run `make setup`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {reason}")
        pytest.skip(reason)
    assert path is not None
    return path


@contextmanager
def chromium_context(viewport: tuple[int, int] = (1440, 1000)) -> Iterator[Any]:
    """A fresh headless Chromium profile; yields a Playwright browser context."""
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    with tempfile.TemporaryDirectory(prefix="console-chromium-") as profile:
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            try:
                yield context
            finally:
                context.close()
