"""How fast the engine serves, measured in seconds: the unit a drill sizes its load in.

An incident that hinges on the engine's capacity (a surge that one replica cannot absorb, RAG
traffic that must leave the engine healthy) is tuned on one machine. On a machine whose engine
is three times slower the same requests per second are three times the load: the baseline is
never steady, or the fix cannot drain the queue; on a faster one the page never comes. Such an
incident records what this probe read where it was tuned (``workload.engine_reference`` in its
manifest), and the drill multiplies its profile's rates by today's reading over that one.

The probe is a few fixed requests (a 150-token prompt, 64 generated tokens, ``ignore_eos``)
sent straight to the engine, two at a time, after one warm-up request: completed requests per
second at that concurrency, which is what a replica with two batch slots can serve.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from sandbox.exceptions import SandboxError

__all__ = ["EngineSpeed", "EngineSpeedError", "measure_engine", "rate_scale"]

PROMPT = "The incident began at noon and the pager went off twice. " * 12
MAX_TOKENS = 64
# The scale is clamped: beyond these a drill's load is too far from what it was tuned on for
# its thresholds to mean the same, and a learner should hear so rather than get a quiet drill.
SCALE_LIMITS = (0.1, 4.0)


class EngineSpeedError(SandboxError):
    """The probe could not complete its requests against the engine."""


@dataclass(frozen=True)
class EngineSpeed:
    requests_per_s: float  # completed probe requests per second, two at a time
    tokens_per_s: float  # generated tokens per second over the same window
    seconds: float  # how long the measured requests took


def measure_engine(
    engine_url: str,
    model: str,
    requests: int = 8,
    concurrency: int = 2,
    timeout_s: float = 120.0,
) -> EngineSpeed:
    """Send ``requests`` probe completions, ``concurrency`` at a time, after one warm-up."""
    url = f"{engine_url.rstrip('/')}/v1/completions"
    body = {"model": model, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "ignore_eos": True}
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0)) as client:

        def one(_: int) -> int:
            response = client.post(url, json=body)
            if response.status_code != 200:
                raise EngineSpeedError(
                    f"engine speed probe: {url} answered {response.status_code}: "
                    f"{response.text[:200]}"
                )
            return int(response.json()["usage"]["completion_tokens"])

        try:
            one(0)  # the first request after a start pays for lazy initialisation
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                generated = sum(pool.map(one, range(requests)))
            seconds = time.perf_counter() - started
        except httpx.HTTPError as exc:
            raise EngineSpeedError(f"engine speed probe: {url}: {exc}") from exc
    return EngineSpeed(requests / seconds, generated / seconds, seconds)


def rate_scale(speed: EngineSpeed, reference_requests_per_s: float) -> float:
    """Today's reading over the one the incident was tuned on, within ``SCALE_LIMITS``."""
    low, high = SCALE_LIMITS
    return min(high, max(low, speed.requests_per_s / reference_requests_per_s))
