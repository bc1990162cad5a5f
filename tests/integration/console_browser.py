"""A real headless Chromium (Debian's) driven by Playwright, and light real traffic through the
gateway: what the console's browser test and bench/console_load.py share."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

__all__ = ["CHROMIUM_ARGS", "background_traffic", "chromium_context", "chromium_path"]

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


_WORDS = "the cache of keys and values grows with every token a sequence holds".split()


@contextmanager
def background_traffic(
    gateway_url: str, seconds: float, workers: int = 2
) -> Iterator[dict[str, int]]:
    """Streaming completions (chat tenants, some RAG) until the block ends or ``seconds`` pass."""
    outcomes: dict[str, int] = {}
    stop = threading.Event()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as client:
            for _ in range(2000):  # bounded; the deadline or the stop ends it long before
                if stop.is_set() or time.monotonic() > deadline:
                    return
                rag = rng.random() < 0.3
                headers = {
                    "X-Sandbox-Tenant": "rag" if rag else rng.choice(["interactive", "batch"])
                }
                if rag:
                    headers["X-Sandbox-RAG"] = "1"
                body = {
                    "model": "tiny",
                    "prompt": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 80))),
                    "max_tokens": rng.randint(8, 32),
                    "stream": True,
                    "ignore_eos": True,
                }
                try:
                    with client.stream(
                        "POST", f"{gateway_url}/v1/completions", json=body, headers=headers
                    ) as response:
                        for _chunk in response.iter_bytes():
                            pass
                        key = str(response.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                with lock:
                    outcomes[key] = outcomes.get(key, 0) + 1
                stop.wait(rng.expovariate(4.0))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
