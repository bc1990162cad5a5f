"""Light real traffic through the gateway: streaming completions from chat tenants and a share of
RAG requests, on background threads. The console's browser test, the dashboards test and
bench/console_load.py all drive the stack with it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["background_traffic", "complete"]

_WORDS = "the cache of keys and values grows with every token a sequence holds".split()


def complete(
    base_url: str,
    prompt: str,
    max_tokens: int,
    *,
    client: httpx.Client | None = None,
    timeout_s: float = 120,
) -> httpx.Response:
    """One completion of exactly ``max_tokens`` tokens (``ignore_eos``) from ``base_url``, an
    engine or the gateway; through ``client`` when given (its own timeout then applies)."""
    url = f"{base_url}/v1/completions"
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
    if client is not None:
        return client.post(url, json=body)
    return httpx.post(url, json=body, timeout=timeout_s)


@contextmanager
def background_traffic(
    gateway_url: str,
    seconds: float,
    workers: int = 2,
    *,
    prompt_words: tuple[int, int] = (20, 80),
    max_tokens: tuple[int, int] = (8, 32),
    pause_s: float = 0.25,
) -> Iterator[dict[str, int]]:
    """Streaming completions until the block ends or ``seconds`` pass; yields the outcomes so far
    (HTTP status or exception name -> count). Each worker waits a random ``pause_s`` on average
    between requests; prompt length and ``max_tokens`` are drawn from the given ranges."""
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
                    "prompt": " ".join(
                        rng.choice(_WORDS) for _ in range(rng.randint(*prompt_words))
                    ),
                    "max_tokens": rng.randint(*max_tokens),
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
                stop.wait(rng.expovariate(1 / pause_s))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
