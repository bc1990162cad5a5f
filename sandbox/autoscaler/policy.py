"""The scaling decision, as the Kubernetes HPA makes it, with no I/O (tests feed it series).

Each step takes an observation (the signal's value per ready replica, how many replicas are
ready and starting) and returns a decision:

1. ratio = signal / target; within ``tolerance`` of 1 the recommendation is "as now".
   Otherwise recommendation = ceil(ready * ratio), computed over the *ready* replicas (the
   signal comes from them) and compared with ready + starting: a replica still loading counts
   towards what the load needs, like the HPA's unready pods, so replicas do not pile up.
2. The recommendation is clamped to [min_replicas, max_replicas].
3. Stabilisation: scaling up goes to the *lowest* recommendation of the last
   ``scale_up_stabilization_s``, scaling down to the *highest* of the last
   ``scale_down_stabilization_s`` (one low reading does not remove a replica).
4. Cooldowns since the last scale event, at most one replica a step, at most ``max_starting``
   starting at once. Being outside [min, max] overrides the cooldowns.

No signal (Prometheus down, no series yet) means hold.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sandbox.autoscaler.options import AutoscalerOptions

__all__ = ["Decision", "Direction", "Observation", "Policy"]


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


@dataclass(frozen=True)
class Observation:
    now: float  # seconds (any monotonic origin)
    signal: float | None  # per ready replica; None when there is no value
    ready: int
    starting: int


@dataclass(frozen=True)
class Decision:
    now: float
    signal: float | None
    target: float
    ready: int
    starting: int
    current: int  # ready + starting
    recommendation: int  # step 1-2
    desired: int  # after stabilisation, cooldowns and step limits
    direction: Direction
    reason: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["direction"] = self.direction.value
        return data


class Policy:
    """Keeps the recommendation history and the last scale time; ``decide`` is one step."""

    def __init__(self, options: AutoscalerOptions) -> None:
        self.options = options
        self._history: deque[tuple[float, int]] = deque()
        self.last_scale_at: float | None = None

    def configure(self, options: AutoscalerOptions) -> None:
        self.options = options

    def decide(self, obs: Observation) -> Decision:
        o = self.options
        current = obs.ready + obs.starting

        def done(recommendation: int, desired: int, reason: str) -> Decision:
            direction = (
                Direction.UP
                if desired > current
                else Direction.DOWN
                if desired < current
                else Direction.NONE
            )
            if direction is not Direction.NONE:
                self.last_scale_at = obs.now
            return Decision(
                obs.now,
                obs.signal,
                o.target,
                obs.ready,
                obs.starting,
                current,
                recommendation,
                desired,
                direction,
                reason,
            )

        # Bounds first: a replica count outside [min, max] is corrected whatever the signal.
        if current < o.min_replicas:
            return done(o.min_replicas, current + 1, f"below min_replicas {o.min_replicas}")
        if current > o.max_replicas:
            return done(o.max_replicas, current - 1, f"above max_replicas {o.max_replicas}")
        if obs.signal is None or math.isnan(obs.signal):
            return done(current, current, "no signal value: holding")

        if obs.ready == 0:
            return done(current, current, "no replica ready yet: holding")
        ratio = obs.signal / o.target
        if abs(ratio - 1.0) <= o.tolerance:
            raw, why = current, f"signal/target {ratio:.2f} within tolerance {o.tolerance:g}"
        else:
            # Over the ready replicas only; compared below with ready + starting, so a replica
            # that is loading already counts towards what the load needs.
            raw, why = (
                math.ceil(obs.ready * ratio),
                f"signal/target {ratio:.2f} over {obs.ready} ready",
            )
        recommendation = min(max(raw, o.min_replicas), o.max_replicas)
        self._remember(obs.now, recommendation)

        if recommendation == current:
            return done(recommendation, current, why)
        up = recommendation > current
        held = self._held(up, obs.now, current)
        if held:
            return done(recommendation, current, f"{why}; {held}")
        if up and obs.starting >= o.max_starting:
            return done(recommendation, current, f"{why}; {obs.starting} replica(s) still starting")
        return done(recommendation, current + 1 if up else current - 1, why)

    def _held(self, up: bool, now: float, current: int) -> str | None:
        """Why a step towards the recommendation waits (step 3's window, then step 4's cooldown),
        or None when it may be taken now."""
        o = self.options
        # Step 3: up to the lowest recommendation of its window, down to the highest of its own.
        if up:
            word, window_s, cooldown_s = "up", o.scale_up_stabilization_s, o.scale_up_cooldown_s
            settled = min(self._window(now, window_s)) > current
        else:
            word, window_s = "down", o.scale_down_stabilization_s
            cooldown_s = o.scale_down_cooldown_s
            settled = max(self._window(now, window_s)) < current
        if not settled:
            return f"{word} held by the {window_s:g} s window"
        if self._cooling(now, cooldown_s):
            return f"{word} held by the {cooldown_s:g} s cooldown"
        return None

    def _remember(self, now: float, recommendation: int) -> None:
        self._history.append((now, recommendation))
        keep = max(self.options.scale_up_stabilization_s, self.options.scale_down_stabilization_s)
        while self._history and self._history[0][0] < now - keep:
            self._history.popleft()

    def _window(self, now: float, seconds: float) -> list[int]:
        return [r for t, r in self._history if t >= now - seconds]

    def _cooling(self, now: float, seconds: float) -> bool:
        return self.last_scale_at is not None and now - self.last_scale_at < seconds
