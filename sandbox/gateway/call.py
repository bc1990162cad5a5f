"""One request while it is served: its state (``Call``) and its back-to-back phases (``Timeline``).

A ``Timeline`` closes one phase where the next begins, so the phase times of a request add up to
its end-to-end time by construction, whatever path it takes. Phase names come from
``sandbox.phases`` (the ``GATEWAY_PHASES`` label values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.trace import Span

from sandbox.gateway.admission import Ticket
from sandbox.gateway.protocol import ParsedRequest
from sandbox.gateway.routing import Engine
from sandbox.phases import GATEWAY_PHASES

__all__ = [
    "ADMISSION",
    "FIRST_TOKEN",
    "POSTPROCESS",
    "RETRIEVAL",
    "SEND",
    "STREAM",
    "Call",
    "Timeline",
]

# The gateway's phases, by their names in the vocabulary table (in the order a request meets them).
ADMISSION, RETRIEVAL, SEND, FIRST_TOKEN, STREAM, POSTPROCESS = GATEWAY_PHASES


@dataclass(slots=True)
class Timeline:
    """Back-to-back phases of one request, on the monotonic clock, anchored to wall time for spans."""

    t0: float = field(default_factory=time.perf_counter)
    t0_ns: int = field(default_factory=time.time_ns)
    last: float = 0.0
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    first_token: float | None = None

    def __post_init__(self) -> None:
        self.last = self.t0

    def mark(self, phase: str, at: float | None = None) -> None:
        now = time.perf_counter() if at is None else max(at, self.last)
        self.phases.append((phase, self.last, now))
        self.last = now

    def wall_ns(self, perf: float) -> int:
        return self.t0_ns + int((perf - self.t0) * 1e9)


@dataclass(slots=True)
class Call:
    """Everything known about one request while it is served."""

    route: str
    tenant: str
    span: Span
    ctx: Context
    timeline: Timeline
    version: str = "none"
    status: int = 200
    engine: Engine | None = None
    parsed: ParsedRequest | None = None
    ticket: Ticket | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finished: bool = False
    live_spans: set[str] = field(default_factory=set)  # phases that have a real span already

    in_flight_at: Engine | None = None  # where the call counts as in flight (routing)

    def send_to(self, version: str, engine: Engine) -> None:
        """Route the call to ``engine``: it counts as in flight there until ``release``."""
        self.release()
        self.version, self.engine = version, engine
        self.in_flight_at = engine
        engine.in_flight += 1

    def release(self) -> None:
        """The engine no longer works on this call (answered, failed, or another was tried)."""
        if self.in_flight_at is not None:
            self.in_flight_at.in_flight -= 1
            self.in_flight_at = None
