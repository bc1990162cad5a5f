"""Accounting: each request recorded once, when it ends, from its timeline.

Each phase becomes a histogram observation (with the trace id as exemplar) and, unless it had a
live span already (retrieval), a child span of the request's server span; then the end-to-end
duration, the TTFT of a streamed answer, the request and token counters, the server span and
one log line. Metric children are bound once per label set and kept, so recording a request
costs no label lookups.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from sandbox.gateway.admission import Admission
from sandbox.gateway.call import ADMISSION, POSTPROCESS, Call
from sandbox.gateway.metrics import GatewayMetrics, status_class
from sandbox.gateway.protocol import CHAT_ROUTE, COMPLETIONS_ROUTE
from sandbox.telemetry import exemplar_of, trace_id_of

__all__ = ["Accounting"]

log = logging.getLogger("sandbox.gateway")

ROUTES = (COMPLETIONS_ROUTE, CHAT_ROUTE)


class Accounting:
    def __init__(self, metrics: GatewayMetrics, tracer: trace.Tracer, admission: Admission) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.admission = admission
        self._children: dict[tuple[str, ...], Any] = {}
        self._zeroed: set[str] = set()

    def _child(self, metric: Any, *values: str) -> Any:
        key = (str(id(metric)), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def zero_error_counts(self, versions: Iterable[str], tenants: Iterable[str]) -> None:
        """Create the 4xx and 5xx request counters of each new version at 0.

        A counter series that first appears at 1 has no earlier sample for ``rate()`` to subtract
        from, so the first refusal of a canary counted for nothing: in bad-rollout, whose canary
        refuses only the rare long prompts, that cost 36 s of the page (docs/alerts.md)."""
        tenants = tuple(tenants)
        for version in versions:
            if version in self._zeroed:
                continue
            self._zeroed.add(version)
            for route, cls, tenant in itertools.product(ROUTES, ("4xx", "5xx"), tenants):
                # Label order as declared: route, version, status_class, tenant.
                self._child(self.metrics.requests_total, route, version, cls, tenant)

    def publish_admission(self) -> None:
        self.metrics.in_flight_tokens.set(self.admission.tokens)
        self.metrics.queue_depth.set(self.admission.queued)

    def finish(self, call: Call) -> None:
        """Record the request once: phases, histograms, counters, spans, admission release."""
        if call.finished:
            return
        call.finished = True
        call.release()
        timeline = call.timeline
        # A request refused before it was admitted spent all its time in admission (parsing and
        # checks included); any other ends with postprocess.
        timeline.mark(POSTPROCESS if timeline.phases else ADMISSION)
        if call.ticket is not None:
            self.admission.release(call.ticket)
            call.ticket = None
        m = self.metrics
        m.in_flight_requests.dec()

        span = call.span
        exemplar = exemplar_of(span)
        version, tenant = call.version, call.tenant
        durations: dict[str, float] = {}
        for phase, start, end in timeline.phases:
            durations[phase] = durations.get(phase, 0.0) + (end - start)
            if phase not in call.live_spans:
                self.tracer.start_span(
                    phase, context=call.ctx, start_time=timeline.wall_ns(start)
                ).end(end_time=timeline.wall_ns(end))
        for phase, seconds in durations.items():
            # Label order as declared: phase, version, tenant.
            self._child(m.phase_seconds, phase, version, tenant).observe(seconds, exemplar)
        e2e = timeline.last - timeline.t0
        cls = status_class(call.status)
        attributes: dict[str, int] = {}  # set in one call: each call takes the span's lock
        # Label order as declared: route, version, status_class, tenant.
        self._child(m.request_duration_seconds, call.route, version, cls, tenant).observe(
            e2e, exemplar
        )
        self._child(m.requests_total, call.route, version, cls, tenant).inc()
        if call.status == 200:
            # Only streamed answers have a first token the client sees before the last; counting
            # a whole non-streamed answer as TTFT would make every batch tenant breach the SLO.
            if timeline.first_token is not None:
                self._child(m.time_to_first_token_seconds, version, tenant).observe(
                    timeline.first_token - timeline.t0, exemplar
                )
            if call.prompt_tokens is not None:
                self._child(m.tokens_total, "prompt", version, tenant).inc(call.prompt_tokens)
                attributes["gen_ai.usage.input_tokens"] = call.prompt_tokens
            if call.completion_tokens is not None:
                self._child(m.tokens_total, "completion", version, tenant).inc(
                    call.completion_tokens
                )
                attributes["gen_ai.usage.output_tokens"] = call.completion_tokens
        attributes["http.response.status_code"] = call.status
        span.set_attributes(attributes)
        if call.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=timeline.wall_ns(timeline.last))
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "route": call.route,
                    "status": call.status,
                    "version": version,
                    "tenant": tenant,
                    "engine": call.engine.name if call.engine else None,
                    "e2e_s": round(e2e, 6),
                    "trace_id": trace_id_of(span),
                    "phases": {k: round(v, 6) for k, v in durations.items()},
                },
            )
