"""One completion request: validate, admit, retrieve, then hand it to the engine call.

Every request walks through the gateway's phases (``sandbox.phases``: ``admission``,
``retrieval``, ``upstream.send``, ``upstream.first_token``, ``upstream.stream``,
``postprocess``) back to back on a ``call.Timeline``, so its phase times add up to its
end-to-end time whatever path it takes (a 429 spends all its time in ``admission``; what
remains after the last phase, on any path, is ``postprocess``).

The jobs around it have a module each: ``upstream`` (choose an engine, send, retry a refused
connection, map failures to answers), ``relay`` (the SSE relay), ``shadow`` (mirrored copies),
``disconnect`` (a client that leaves cancels the engine's request), ``accounting`` (metrics,
spans and the log line, once per request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
from fastapi import Request
from fastapi.responses import Response
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from sandbox.gateway.accounting import Accounting
from sandbox.gateway.admission import Admission, Rejected
from sandbox.gateway.call import ADMISSION, RETRIEVAL, Call, Timeline
from sandbox.gateway.config import GatewayOptions
from sandbox.gateway.disconnect import CLIENT_CLOSED, until_disconnect
from sandbox.gateway.errors import GatewayError
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.gateway.protocol import RAG_HEADER, ParsedRequest, parse_request
from sandbox.gateway.rag import RetrievalFailed, attach_context, query_of, retrieve
from sandbox.gateway.relay import RelayResponse
from sandbox.gateway.routing import Router
from sandbox.gateway.shadow import Shadower
from sandbox.gateway.tokens import TokenCounter
from sandbox.gateway.upstream import Upstream
from sandbox.httpstream import StreamClient
from sandbox.telemetry import extract_context, inject_context, trace_id_of

__all__ = ["TENANT_HEADER", "Gateway"]

log = logging.getLogger("sandbox.gateway")

TENANT_HEADER = "x-sandbox-tenant"
_MAX_BODY_BYTES = 8 * 1024 * 1024


class Gateway:
    def __init__(
        self, options: GatewayOptions, metrics: GatewayMetrics, tracer: trace.Tracer
    ) -> None:
        self.options = options
        self.metrics = metrics
        self.tracer = tracer
        self.router = Router(options.engines, options.weights, options.shadow)
        self.admission = Admission(options.admission, on_change=self._publish_admission)
        self.accounting = Accounting(metrics, tracer, self.admission)
        self.counter = TokenCounter(options.tokenizer_path)
        self.tenants = set(options.tenants)
        self.started = int(time.time())
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(options.upstream_timeout_s, connect=options.connect_timeout_s),
            # No pool bound: admission control, not the HTTP client, decides how much is in flight.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )
        # Completions go to the engines through the lean streaming client (see sandbox.httpstream).
        self.engines = StreamClient(options.connect_timeout_s, options.upstream_timeout_s)
        self.upstream = Upstream(self.engines, self.router, metrics, tracer)
        self.shadower = Shadower(
            self.client, self.router, metrics, tracer, options.max_shadow_in_flight
        )
        self.publish_routing()

    # -- Life cycle ----------------------------------------------------------------------

    async def run_prober(self) -> None:
        """Keep the engines' readiness current (forever; cancelled at shutdown)."""
        while True:
            await self.router.probe(self.client, timeout_s=min(2.0, self.options.probe_interval_s))
            self.publish_routing()
            await asyncio.sleep(self.options.probe_interval_s)

    async def close(self) -> None:
        self.shadower.cancel()
        await self.engines.aclose()
        await self.client.aclose()

    def publish_routing(self) -> None:
        self.upstream.publish_routing()
        # Every tenant label tenant_of can give: the configured ones, "default" and "other".
        tenants = {*self.tenants, "default", "other"}
        self.accounting.zero_error_counts(self.router.versions, sorted(tenants))

    def _publish_admission(self) -> None:
        accounting = getattr(self, "accounting", None)  # None while the constructor runs
        if accounting is not None:
            accounting.publish_admission()

    def tenant_of(self, request: Request) -> str:
        tenant = request.headers.get(TENANT_HEADER)
        if tenant is None:
            return "default"
        return tenant if tenant in self.tenants else "other"

    def _disconnected(self, route: str) -> None:
        self.metrics.disconnects_total.labels(route=route).inc()

    # -- One request ------------------------------------------------------------------------

    async def handle(self, request: Request, route: str) -> Response:
        timeline = Timeline()
        tenant = self.tenant_of(request)
        span = self.tracer.start_span(
            f"POST {route}",
            context=extract_context(request.headers),
            kind=SpanKind.SERVER,
            start_time=timeline.t0_ns,
            attributes={
                "http.request.method": "POST",
                "http.route": route,
                "sandbox.tenant": tenant,
            },
        )
        call = Call(route, tenant, span, trace.set_span_in_context(span), timeline)
        self.metrics.in_flight_requests.inc()
        try:
            response = await self._serve(request, call)
        except GatewayError as exc:
            call.status = exc.status
            response = exc.response()
        except asyncio.CancelledError:
            call.status = CLIENT_CLOSED
            self.accounting.finish(call)
            raise
        except Exception as exc:  # a bug must answer 500, be logged, and still be accounted
            log.exception("unhandled error serving %s", route)
            call.status = 500
            response = GatewayError(
                500, f"internal error: {type(exc).__name__}", None, "internal_error"
            ).response()
        if not isinstance(response, RelayResponse):  # a relay accounts when its stream ends
            call.status = response.status_code
            self.accounting.finish(call)
        # Which trace and which version answered: what a learner (or a test) needs to follow one request.
        trace_id = trace_id_of(span)
        if trace_id:
            response.headers["x-sandbox-trace-id"] = trace_id
        if call.version != "none":
            response.headers["x-sandbox-version"] = call.version
        return response

    async def _serve(self, request: Request, call: Call) -> Response:
        raw = await request.body()
        if len(raw) > _MAX_BODY_BYTES:
            raise GatewayError(
                413, f"request body over {_MAX_BODY_BYTES} bytes", None, "body_too_large"
            )
        parsed = call.parsed = parse_request(
            raw,
            call.route,
            self.options.models,
            self.options.max_tokens_limit,
            request.headers.get(RAG_HEADER),
        )
        call.span.set_attributes(
            {
                "gen_ai.request.model": parsed.model,
                "sandbox.stream": parsed.stream,
                "sandbox.rag": parsed.rag,
            }
        )
        await self._admit(call, parsed)
        call.timeline.mark(ADMISSION)
        if parsed.rag:
            await self._retrieve(call, parsed)
            call.timeline.mark(RETRIEVAL)

        upstream_body = parsed.body
        if parsed.stream:
            # Ask for the usage chunk so tokens are counted; it is dropped if the client did not ask.
            upstream_body["stream_options"] = {
                **(parsed.body.get("stream_options") or {}),
                "include_usage": True,
            }
        payload = json.dumps(upstream_body, separators=(",", ":")).encode()
        if parsed.stream:
            upstream, client_span = await self.upstream.open(call, payload, stream=True)
            self.shadower.maybe(call, payload)
            return RelayResponse(
                call,
                upstream,
                client_span,
                self.upstream.count_error,
                self._disconnected,
                self.accounting.finish,
            )

        async def complete() -> Response:
            response = await self.upstream.complete(call, payload)
            self.shadower.maybe(call, payload)
            return response

        return await until_disconnect(
            request, complete(), lambda: self._disconnected(request.url.path)
        )

    async def _admit(self, call: Call, parsed: ParsedRequest) -> None:
        """Count the request's tokens, check the limits, wait for room (or raise 400/429)."""
        prompt_tokens = parsed_tokens = (
            self.counter.messages(parsed.body["messages"])
            if parsed.is_chat
            else self.counter.prompt(parsed.body["prompt"])
        )
        if parsed.rag:
            prompt_tokens += self.options.rag.max_context_tokens  # room for the passages to come
        if parsed_tokens > self.options.max_prompt_tokens:
            self.metrics.rejections_total.labels(reason="prompt_too_long").inc()
            raise GatewayError(
                400,
                f"prompt has {parsed_tokens} tokens; the limit is {self.options.max_prompt_tokens}",
                "messages" if parsed.is_chat else "prompt",
                "context_length_exceeded",
            )
        budget_max_tokens = parsed.max_tokens or (
            max(1, self.options.max_tokens_limit - parsed_tokens)
            if parsed.is_chat
            else self.options.default_max_tokens
        )
        cost = prompt_tokens + budget_max_tokens * parsed.n
        call.span.set_attribute("sandbox.admission.tokens", cost)
        try:
            call.ticket = await self.admission.acquire(cost)
        except Rejected as exc:
            self.metrics.rejections_total.labels(reason=exc.reason).inc()
            call.span.set_attribute("sandbox.rejection", exc.reason)
            retry = str(self.admission.options.retry_after_s)
            raise GatewayError(429, str(exc), None, exc.reason, {"Retry-After": retry}) from None

    async def _retrieve(self, call: Call, parsed: ParsedRequest) -> None:
        query = query_of(parsed)
        with self.tracer.start_as_current_span(RETRIEVAL, context=call.ctx) as span:
            call.live_spans.add(RETRIEVAL)
            if query is None:
                span.set_attribute("sandbox.rag.skipped", "no text prompt")
                return
            try:
                passages = await retrieve(self.client, self.options.rag, query, inject_context({}))
            except RetrievalFailed as exc:
                self.metrics.retrieval_fallbacks_total.labels(reason=exc.reason).inc()
                span.set_attribute("sandbox.rag.fallback", exc.reason)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                log.warning(
                    "retrieval fallback: %s", exc, extra={"trace_id": trace_id_of(call.span)}
                )
                return
            added = attach_context(
                parsed, passages, self.counter, self.options.rag.max_context_tokens
            )
            span.set_attribute("sandbox.rag.passages", len(passages))
            span.set_attribute("sandbox.rag.context_tokens", added)
