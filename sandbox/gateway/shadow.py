"""Shadowing: a copy of some answered requests goes to another version, and its answer is dropped.

The copy is sent after the user's request has been answered by the engine (or, for a stream,
after its headers came back), never streamed, bounded in number (``max_shadow_in_flight``,
beyond which copies are skipped and counted), and traced as a ``shadow`` span of the request.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from sandbox.gateway.call import Call
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.gateway.routing import Engine, Router
from sandbox.telemetry import inject_context

__all__ = ["Shadower"]


@dataclass(eq=False)  # it counts copies in flight: compared and hashed by identity
class Shadower:
    client: httpx.AsyncClient
    router: Router
    metrics: GatewayMetrics
    tracer: trace.Tracer
    max_in_flight: int
    in_flight: int = field(default=0, init=False)
    tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def maybe(self, call: Call, payload: bytes) -> None:
        """Mirror this request if a shadow is configured for its version (and there is room)."""
        target = self.router.shadow_target(call.version)
        if target is None:
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.shadow_requests_total.labels(
                version=target.version, outcome="skipped"
            ).inc()
            return
        body = json.loads(payload)
        body["stream"] = False
        body.pop("stream_options", None)
        task = asyncio.ensure_future(self._send(call, target, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def _send(self, call: Call, engine: Engine, body: dict[str, Any]) -> None:
        self.in_flight += 1
        outcome = "error"
        try:
            with self.tracer.start_as_current_span(
                "shadow",
                context=call.ctx,
                kind=SpanKind.CLIENT,
                attributes={"sandbox.engine": engine.name, "sandbox.version": engine.version},
            ) as span:
                try:
                    response = await self.client.post(
                        f"{engine.url}{call.route}", json=body, headers=inject_context({})
                    )
                    span.set_attribute("http.response.status_code", response.status_code)
                    outcome = "ok" if response.status_code == 200 else "error"
                except httpx.HTTPError as exc:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        finally:
            self.in_flight -= 1
            self.metrics.shadow_requests_total.labels(version=engine.version, outcome=outcome).inc()
