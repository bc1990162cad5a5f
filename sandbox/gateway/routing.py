"""Which engine serves a request: weighted choice of a version, then a ready replica of it.

Within a version the replica with the fewest requests in flight through this gateway wins
(ties take turns). Round robin would give a replica that is slower, or still behind a backlog
from before it had company, the same share as the others, and its queue would keep growing
while the others idle: least outstanding requests is what load balancers do for that.

An engine is *in rotation* while it answers: a failed connection takes it out at once, as do
``PROBE_FAILURES_OUT`` failed ``/health`` probes in a row (one slow probe on a busy CPU is not a
dead engine), and the prober puts it back when its ``/health`` answers 200 again. When a version has no engine in
rotation, its share goes to the versions that do (the canary is down: stable takes the load).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import httpx

from sandbox.exceptions import SandboxError
from sandbox.gateway.config import EngineOptions, ShadowOptions

__all__ = ["PROBE_FAILURES_OUT", "Engine", "NoEngineError", "Router"]

PROBE_FAILURES_OUT = 3  # as Kubernetes' readiness failureThreshold


class NoEngineError(SandboxError):
    """No engine in rotation can take the request."""


@dataclass
class Engine:
    name: str
    version: str
    url: str
    ready: bool = False
    failures: int = 0
    failed_probes: int = 0  # in a row
    in_flight: int = 0  # requests sent to it through this gateway and not yet finished
    last_error: str = ""
    changed_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "url": self.url,
            "ready": self.ready,
            "failures": self.failures,
            "last_error": self.last_error,
            "since": self.changed_at,
        }


class Router:
    def __init__(
        self,
        engines: list[EngineOptions],
        weights: dict[str, float],
        shadow: ShadowOptions | None,
        rng: random.Random | None = None,
    ) -> None:
        self.engines: dict[str, Engine] = {
            e.name: Engine(e.name, e.version, e.url) for e in engines
        }
        self.weights = dict(weights)
        self.shadow = shadow
        self._rng = rng or random.Random()
        self._turn = itertools.count()

    # -- Configuration (the admin API) ---------------------------------------------------

    @property
    def versions(self) -> list[str]:
        return sorted({e.version for e in self.engines.values()} | set(self.weights))

    def set_weights(self, weights: dict[str, float]) -> None:
        known = {e.version for e in self.engines.values()}
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ValueError(
                f"no engine serves version(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("weights must be >= 0 and at least one > 0")
        # Versions not named get weight 0: `weights stable=100` means all traffic to stable.
        self.weights = {v: float(weights.get(v, 0.0)) for v in known}

    def set_shadow(self, shadow: ShadowOptions | None) -> None:
        if shadow is not None and shadow.version not in {e.version for e in self.engines.values()}:
            raise ValueError(f"no engine serves version {shadow.version!r}")
        self.shadow = shadow

    def add(self, engine: EngineOptions) -> Engine:
        if engine.name in self.engines:
            raise ValueError(f"an engine named {engine.name!r} is registered already")
        added = self.engines[engine.name] = Engine(engine.name, engine.version, engine.url)
        self.weights.setdefault(engine.version, 0.0)
        return added

    def remove(self, name: str) -> Engine:
        return self.engines.pop(name)

    # -- Choice ----------------------------------------------------------------------------

    def ready(self, version: str | None = None) -> list[Engine]:
        return [
            e
            for e in self.engines.values()
            if e.ready and (version is None or e.version == version)
        ]

    def choose_version(self, exclude: AbstractSet[str] = frozenset()) -> str:
        live = {e.version for e in self.engines.values() if e.ready and e.name not in exclude}
        options = [(v, w) for v, w in sorted(self.weights.items()) if v in live and w > 0]
        if not options:
            # Weights name only versions that are down: any live engine beats a 503.
            options = [(v, 1.0) for v in sorted(live)]
        if not options:
            raise NoEngineError("no engine is in rotation")
        total = sum(w for _, w in options)
        pick = self._rng.random() * total
        for version, weight in options:
            pick -= weight
            if pick < 0:
                return version
        return options[-1][0]

    def choose_engine(self, version: str, exclude: AbstractSet[str] = frozenset()) -> Engine:
        candidates = [e for e in self.ready(version) if e.name not in exclude]
        if not candidates:
            raise NoEngineError(f"no engine of version {version!r} is in rotation")
        fewest = min(e.in_flight for e in candidates)
        least = [e for e in candidates if e.in_flight == fewest]
        return least[next(self._turn) % len(least)]

    def shadow_target(self, primary: str) -> Engine | None:
        """The engine to mirror this request to, or None (not sampled, or nothing ready)."""
        shadow = self.shadow
        if shadow is None or shadow.version == primary or self._rng.random() >= shadow.share:
            return None
        candidates = self.ready(shadow.version)
        return candidates[next(self._turn) % len(candidates)] if candidates else None

    # -- Health ---------------------------------------------------------------------------

    def mark_failed(self, engine: Engine, why: str) -> None:
        engine.failures += 1
        engine.last_error = why
        if engine.ready:
            engine.ready = False
            engine.changed_at = time.time()

    def mark_ready(self, engine: Engine) -> None:
        if not engine.ready:
            engine.ready = True
            engine.last_error = ""
            engine.changed_at = time.time()

    async def probe(self, client: httpx.AsyncClient, timeout_s: float = 2.0) -> None:
        """Check every engine's /health once, concurrently."""

        def failed(engine: Engine, why: str) -> None:
            engine.failed_probes += 1
            engine.last_error = why
            if engine.failed_probes >= PROBE_FAILURES_OUT:
                self.mark_failed(engine, why)
                engine.failures -= 1  # a failed probe is not a failed request

        async def one(engine: Engine) -> None:
            try:
                response = await client.get(f"{engine.url}/health", timeout=timeout_s)
            except httpx.HTTPError as exc:
                failed(engine, f"/health: {type(exc).__name__}")
                return
            if response.status_code == 200:
                engine.failed_probes = 0
                self.mark_ready(engine)
            else:
                failed(engine, f"/health answered {response.status_code}")

        await asyncio.gather(*(one(e) for e in list(self.engines.values())))
