"""The fault hook: extra latency in one retrieval part, set and cleared at run time.

A fault is ``{"phase": "search", "kind": "fixed|jitter|heavy_tail", "params": {...}, "ttl_s": ...}``:

- ``fixed``: ``{"delay_s": 0.2}``, the same delay every time;
- ``jitter``: ``{"mean_s": 0.2, "jitter_s": 0.1}``, uniform in mean ± jitter (never below 0);
- ``heavy_tail``: ``{"median_s": 0.05, "sigma": 1.5}`` (lognormal) or
  ``{"distribution": "pareto", "median_s": 0.05, "alpha": 1.2}``: most calls a little slow,
  a few very slow, which is what a real slow dependency looks like on a p99 panel.
  ``cap_s`` bounds one delay (default 60 s).

``ttl_s`` (optional) clears the fault by itself, so a crashed drill cannot leave it behind.
The delay is spent inside the part's timing and span, so it shows where a real slowdown would.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox.exceptions import ConfigError
from sandbox.validation import field_problems

__all__ = [
    "MAX_DELAY_S",
    "ActiveFault",
    "FaultSpec",
    "FaultState",
    "FixedParams",
    "HeavyTailParams",
    "JitterParams",
    "RetrieverFaultError",
    "parse_fault",
]

# No single injected delay exceeds this: a typo in a drill must not hang a request for hours.
MAX_DELAY_S = 300.0

Seconds = Annotated[float, Field(ge=0.0, le=MAX_DELAY_S)]


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FixedParams(_Params):
    delay_s: Seconds


class JitterParams(_Params):
    mean_s: Seconds
    jitter_s: Seconds


class HeavyTailParams(_Params):
    distribution: Literal["lognormal", "pareto"] = "lognormal"
    median_s: Annotated[float, Field(gt=0.0, le=MAX_DELAY_S)]
    sigma: Annotated[float, Field(gt=0.0, le=5.0)] = 1.0  # lognormal spread
    alpha: Annotated[float, Field(gt=0.0, le=10.0)] = 1.5  # Pareto shape: lower = heavier tail
    cap_s: Annotated[float, Field(gt=0.0, le=MAX_DELAY_S)] = 60.0

    @model_validator(mode="after")
    def _cap_above_median(self) -> HeavyTailParams:
        if self.cap_s < self.median_s:
            raise ValueError("cap_s must be at least median_s")
        return self


Kind = Literal["fixed", "jitter", "heavy_tail"]
PARAMS_BY_KIND: dict[str, type[_Params]] = {
    "fixed": FixedParams,
    "jitter": JitterParams,
    "heavy_tail": HeavyTailParams,
}


class FaultSpec(BaseModel):
    """A validated fault. ``params`` is checked against the model of its ``kind``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phase: Literal["embed", "search", "rerank"]
    kind: Kind
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_s: Annotated[float, Field(gt=0.0, le=86_400.0)] | None = None

    def typed_params(self) -> _Params:
        return PARAMS_BY_KIND[self.kind].model_validate(self.params)


class RetrieverFaultError(ConfigError):
    """A fault request is invalid. ``problems`` pairs each field (dotted path) with what is wrong."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))

    @property
    def param(self) -> str | None:
        return self.problems[0][0] if self.problems else None


def _problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    return field_problems(exc, prefix=prefix, default=prefix.rstrip(".") or "body")


def parse_fault(body: object) -> FaultSpec:
    """Validate a fault request body; raise RetrieverFaultError naming each bad field (``params.delay_s``)."""
    try:
        spec = FaultSpec.model_validate(body)
    except ValidationError as exc:
        raise RetrieverFaultError(_problems(exc)) from exc
    try:
        spec.typed_params()
    except ValidationError as exc:
        raise RetrieverFaultError(_problems(exc, prefix="params.")) from exc
    return spec


class _Sampler:
    """Draws one delay from a fault's distribution."""

    def __init__(self, params: _Params, rng: random.Random) -> None:
        self.params = params
        self.rng = rng

    def draw(self) -> float:
        p = self.params
        if isinstance(p, FixedParams):
            return p.delay_s
        if isinstance(p, JitterParams):
            return max(0.0, p.mean_s + self.rng.uniform(-p.jitter_s, p.jitter_s))
        assert isinstance(p, HeavyTailParams)
        if p.distribution == "lognormal":
            value = self.rng.lognormvariate(math.log(p.median_s), p.sigma)
        else:
            # Pareto with shape alpha has median scale * 2^(1/alpha); choose the scale from it.
            scale = p.median_s / 2 ** (1 / p.alpha)
            value = scale * self.rng.paretovariate(p.alpha)
        return min(value, p.cap_s)

    def mean(self) -> float:
        """The mean delay, for the gauge: exact for fixed, estimated from draws otherwise
        (a capped heavy tail has no tidy formula, and 20,000 draws take a few milliseconds)."""
        if isinstance(self.params, FixedParams):
            return self.params.delay_s
        estimator = _Sampler(self.params, random.Random(0))
        n = 20_000
        return sum(estimator.draw() for _ in range(n)) / n


@dataclass(frozen=True)
class ActiveFault:
    spec: FaultSpec
    mean_delay_s: float
    expires_at: float | None  # time.monotonic() deadline, None = until cleared

    def describe(self) -> dict[str, Any]:
        remaining = (
            None if self.expires_at is None else max(0.0, self.expires_at - time.monotonic())
        )
        return {
            **self.spec.model_dump(),
            "mean_delay_s": self.mean_delay_s,
            "expires_in_s": remaining,
        }


class FaultState:
    """The active fault of each phase (at most one per phase), shared by request threads.

    ``on_change(phase, mean_delay_s)`` is called whenever a phase's fault is set, cleared or
    expires, so the injected-delay gauge follows without polling.
    """

    def __init__(self, on_change: Any = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, tuple[ActiveFault, _Sampler]] = {}
        self._rng = random.Random(seed)
        self._on_change = on_change or (lambda phase, mean: None)

    def set(self, spec: FaultSpec) -> ActiveFault:
        sampler = _Sampler(spec.typed_params(), self._rng)
        expires = None if spec.ttl_s is None else time.monotonic() + spec.ttl_s
        active = ActiveFault(spec, sampler.mean(), expires)
        with self._lock:
            self._faults[spec.phase] = (active, sampler)
        self._on_change(spec.phase, active.mean_delay_s)
        return active

    def clear(self, phase: str | None = None) -> list[str]:
        """Clear one phase's fault, or every fault; return the phases that had one."""
        with self._lock:
            phases = [phase] if phase is not None else list(self._faults)
            cleared = [p for p in phases if self._faults.pop(p, None) is not None]
        for p in cleared:
            self._on_change(p, 0.0)
        return cleared

    def active(self) -> dict[str, ActiveFault]:
        self._expire()
        with self._lock:
            return {phase: active for phase, (active, _) in self._faults.items()}

    def draw(self, phase: str) -> tuple[float, ActiveFault | None]:
        """The delay to add to ``phase`` now (0 and None without a fault)."""
        self._expire()
        with self._lock:
            entry = self._faults.get(phase)
            if entry is None:
                return 0.0, None
            active, sampler = entry
            return sampler.draw(), active

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [
                phase
                for phase, (active, _) in self._faults.items()
                if active.expires_at is not None and active.expires_at <= now
            ]
            for phase in expired:
                del self._faults[phase]
        for phase in expired:
            self._on_change(phase, 0.0)
