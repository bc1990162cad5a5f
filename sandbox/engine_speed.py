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

One round of eight requests is not a measurement on a shared 2-core machine: back to back on
an idle stack, rounds read from 3.1 to 6.7 requests/s (2026-12-04), and a drill that drew a low
one sized its load at x0.43 and never paged. So the probe runs five rounds and reports their
median (5.1-5.8 in four tries on that stack); every round's reading goes into the drill's
events.
"""

from __future__ import annotations

import statistics
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
    requests_per_s: float  # completed probe requests per second, two at a time (median round)
    tokens_per_s: float  # generated tokens per second (median round)
    seconds: float  # how long the measured rounds took in all
    rounds: tuple[float, ...] = ()  # every round's requests per second, in order


def measure_engine(
    engine_url: str,
    model: str,
    requests: int = 8,
    concurrency: int = 2,
    timeout_s: float = 120.0,
    rounds: int = 5,
) -> EngineSpeed:
    """After one warm-up, ``rounds`` times send ``requests`` probe completions,
    ``concurrency`` at a time; the median round is the reading."""
    if rounds < 1 or requests < 1:
        raise ValueError("engine speed probe: rounds and requests must be at least 1")
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

        readings: list[tuple[float, float]] = []  # (requests/s, tokens/s) of each round
        total_s = 0.0
        try:
            one(0)  # the first request after a start pays for lazy initialisation
            with ThreadPoolExecutor(concurrency) as pool:
                for _ in range(rounds):
                    started = time.perf_counter()
                    generated = sum(pool.map(one, range(requests)))
                    seconds = time.perf_counter() - started
                    total_s += seconds
                    readings.append((requests / seconds, generated / seconds))
        except httpx.HTTPError as exc:
            raise EngineSpeedError(f"engine speed probe: {url}: {exc}") from exc
    # median_low picks a round that happened, so its requests and tokens belong together.
    median = statistics.median_low(readings)
    return EngineSpeed(median[0], median[1], total_s, tuple(rps for rps, _ in readings))


def rate_scale(speed: EngineSpeed, reference_requests_per_s: float) -> float:
    """Today's reading over the one the incident was tuned on, within ``SCALE_LIMITS``."""
    low, high = SCALE_LIMITS
    return min(high, max(low, speed.requests_per_s / reference_requests_per_s))
