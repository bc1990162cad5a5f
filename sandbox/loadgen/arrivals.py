"""Arrival processes: when the next request of an open-loop tenant starts.

Open loop means the schedule never waits for earlier responses: an overloaded server shows up
as queueing and latency, not as a client that politely slows down. The rate may vary over time
(``rate(t)``, the tenant's base rate times its shape); the next arrival is found by the
time-change method: draw a unit of "work" (Exp(1) for Poisson, exactly 1 for evenly spaced
arrivals) and advance until the integral of ``rate`` over the wait reaches it. For a constant
rate this is exactly ``t + Exp(1) / rate``; for ramps and steps the integral is taken in steps of
at most ``MAX_STEP_S``.

Closed loop (N users, each sending its next request when the previous one ends, after a think
time) lives in the runner: it has no schedule of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np

__all__ = ["MAX_STEP_S", "ArrivalKind", "next_arrival", "schedule"]

# The integration step for time-varying rates: small against the shortest phase a profile uses,
# and large enough that a tenant at 0.1 req/s costs a few hundred float ops per arrival.
MAX_STEP_S = 0.01


class ArrivalKind(StrEnum):
    POISSON = "poisson"  # exponential gaps: independent users, the default
    UNIFORM = "uniform"  # evenly spaced at the rate: a metronome, for calibration
    CLOSED = "closed"  # N users in a loop (no schedule)


def next_arrival(
    t: float,
    rate: Callable[[float], float],
    rng: np.random.Generator,
    kind: ArrivalKind = ArrivalKind.POISSON,
    horizon: float = float("inf"),
) -> float | None:
    """The first arrival after ``t`` for the rate function ``rate`` (requests per second), or
    None when none comes before ``horizon`` (the rate may be 0 for a while, or for good)."""
    work = rng.exponential(1.0) if kind is ArrivalKind.POISSON else 1.0
    done = 0.0
    while t < horizon:
        r = rate(t)
        if r > 0 and done + r * MAX_STEP_S >= work:
            arrival = t + (work - done) / r
            return arrival if arrival < horizon else None
        done += max(r, 0.0) * MAX_STEP_S
        t += MAX_STEP_S
    return None


def schedule(
    rate: Callable[[float], float],
    duration_s: float,
    rng: np.random.Generator,
    kind: ArrivalKind = ArrivalKind.POISSON,
) -> list[float]:
    """Every arrival time in ``[0, duration_s)`` (for tests and for planning a run up front)."""
    times: list[float] = []
    t = 0.0
    while True:
        nxt = next_arrival(t, rate, rng, kind, horizon=duration_s)
        if nxt is None:
            return times
        times.append(nxt)
        t = nxt
