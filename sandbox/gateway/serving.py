"""The logic of one completion request: validate, admit, retrieve, route, relay, account.

Every request walks through the phases of ``sandbox.gateway.metrics`` back to back: a
``Timeline`` closes one phase where the next begins, so the phase times of a request add up to
its end-to-end time by construction, whatever path it takes (a 429 spends all its time in
``admission``; what remains after the last phase, on any path, is ``postprocess``). At the end,
each phase becomes a histogram observation (with the trace id as exemplar) and a child span of
the request's server span. The retrieval span and the upstream client span are live spans, so
the retriever's spans and vLLM's ``llm_request`` span nest under them through ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import Receive, Scope, Send

from sandbox.gateway.admission import Admission, Rejected, Ticket
from sandbox.gateway.config import GatewayOptions
from sandbox.gateway.errors import GatewayError, sse_error
from sandbox.gateway.metrics import GatewayMetrics, status_class
from sandbox.gateway.protocol import RAG_HEADER, ParsedRequest, parse_request
from sandbox.gateway.rag import RetrievalFailed, attach_context, query_of, retrieve
from sandbox.gateway.routing import Engine, NoEngineError, Router
from sandbox.gateway.tokens import TokenCounter
from sandbox.telemetry import exemplar_of, extract_context, inject_context, trace_id_of

__all__ = ["TENANT_HEADER", "Gateway"]

log = logging.getLogger("sandbox.gateway")

TENANT_HEADER = "x-sandbox-tenant"
CLIENT_CLOSED = 499  # nginx's code for "the client went away"; counted as 4xx
_MAX_BODY_BYTES = 8 * 1024 * 1024


class _UpstreamFailure(Exception):
    def __init__(self, error: GatewayError, kind: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind


@dataclass
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


@dataclass
class _Call:
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


class Gateway:
    def __init__(
        self, options: GatewayOptions, metrics: GatewayMetrics, tracer: trace.Tracer
    ) -> None:
        self.options = options
        self.metrics = metrics
        self.tracer = tracer
        self.router = Router(options.engines, options.weights, options.shadow)
        self.admission = Admission(options.admission, on_change=self._publish_admission)
        self.counter = TokenCounter(options.tokenizer_path)
        self.tenants = set(options.tenants)
        self.started = int(time.time())
        self._shadow_in_flight = 0
        self._background: set[asyncio.Task[None]] = set()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(options.upstream_timeout_s, connect=options.connect_timeout_s),
            # No pool bound: admission control, not the HTTP client, decides how much is in flight.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
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
        for task in list(self._background):
            task.cancel()
        await self.client.aclose()

    def publish_routing(self) -> None:
        for version in self.router.versions:
            self.metrics.route_weight.labels(version=version).set(
                self.router.weights.get(version, 0.0)
            )
            self.metrics.ready_engines.labels(version=version).set(len(self.router.ready(version)))

    def tenant_of(self, request: Request) -> str:
        tenant = request.headers.get(TENANT_HEADER)
        if tenant is None:
            return "default"
        return tenant if tenant in self.tenants else "other"

    # -- One request ------------------------------------------------------------------------

    async def handle(self, request: Request, route: str) -> Response:
        timeline = Timeline()
        span = self.tracer.start_span(
            f"POST {route}",
            context=extract_context(request.headers),
            kind=SpanKind.SERVER,
            start_time=timeline.t0_ns,
            attributes={"http.request.method": "POST", "http.route": route},
        )
        call = _Call(
            route, self.tenant_of(request), span, trace.set_span_in_context(span), timeline
        )
        span.set_attribute("sandbox.tenant", call.tenant)
        self.metrics.in_flight_requests.inc()
        try:
            response = await self._serve(request, call)
        except GatewayError as exc:
            call.status = exc.status
            response = exc.response()
        except _Relayed as relayed:
            response = Response(relayed.body, relayed.status, media_type="application/json")
        except asyncio.CancelledError:
            call.status = CLIENT_CLOSED
            self._finish(call)
            raise
        except Exception as exc:  # a bug must answer 500, be logged, and still be accounted
            log.exception("unhandled error serving %s", route)
            call.status = 500
            response = GatewayError(
                500, f"internal error: {type(exc).__name__}", None, "internal_error"
            ).response()
        if not isinstance(response, _RelayResponse):
            call.status = response.status_code
            self._finish(call)
        # Which trace and which version answered: what a learner (or a test) needs to follow one request.
        trace_id = trace_id_of(span)
        if trace_id:
            response.headers["x-sandbox-trace-id"] = trace_id
        if call.version != "none":
            response.headers["x-sandbox-version"] = call.version
        return response

    async def _serve(self, request: Request, call: _Call) -> Response:
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
        call.span.set_attribute("gen_ai.request.model", parsed.model)
        call.span.set_attribute("sandbox.stream", parsed.stream)
        call.span.set_attribute("sandbox.rag", parsed.rag)

        # -- admission: count, check the limit, wait for room ----------------------------
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
        call.timeline.mark("admission")

        # -- retrieval -------------------------------------------------------------------
        if parsed.rag:
            await self._retrieve(call, parsed)
            call.timeline.mark("retrieval")

        # -- network, upstream_ttft, decode ---------------------------------------------
        upstream_body = dict(parsed.body)
        if parsed.stream:
            # Ask for the usage chunk so tokens are counted; it is dropped if the client did not ask.
            upstream_body["stream_options"] = {
                **(parsed.body.get("stream_options") or {}),
                "include_usage": True,
            }
        payload = json.dumps(upstream_body).encode()
        if parsed.stream:
            upstream, client_span = await self._open_upstream(call, payload, stream=True)
            return _RelayResponse(self, call, upstream, client_span)
        return await self._until_disconnect(request, self._complete(call, payload))

    async def _retrieve(self, call: _Call, parsed: ParsedRequest) -> None:
        query = query_of(parsed)
        with self.tracer.start_as_current_span("retrieval", context=call.ctx) as span:
            call.live_spans.add("retrieval")
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

    async def _open_upstream(
        self, call: _Call, payload: bytes, stream: bool
    ) -> tuple[httpx.Response, Span]:
        """Send the request to an engine (trying the next one when a connection fails).

        Returns once the response headers are in; ``network`` is closed when the request has
        been written (httpx's trace hook), so what follows is the engine's time.
        """
        tried: set[str] = set()
        sent_at: list[float] = []

        async def on_event(name: str, info: dict[str, Any]) -> None:
            if name.endswith("send_request_body.complete"):
                sent_at.append(time.perf_counter())

        while True:
            try:
                version = self.router.choose_version(exclude=tried)
                engine = self.router.choose_engine(version, exclude=tried)
            except NoEngineError as exc:
                call.timeline.mark("network")
                self.publish_routing()
                raise GatewayError(503, f"no engine available: {exc}", None, "no_engine") from None
            call.version, call.engine = version, engine
            tried.add(engine.name)
            client_span = self.tracer.start_span(
                "upstream",
                context=call.ctx,
                kind=SpanKind.CLIENT,
                attributes={
                    "sandbox.engine": engine.name,
                    "sandbox.version": version,
                    "server.address": engine.url,
                    "url.path": call.route,
                },
            )
            headers = inject_context(
                {"content-type": "application/json"}, trace.set_span_in_context(client_span)
            )
            request = self.client.build_request(
                "POST",
                f"{engine.url}{call.route}",
                content=payload,
                headers=headers,
                extensions={"trace": on_event},
            )
            try:
                response = await self.client.send(request, stream=True)
            except httpx.ConnectError as exc:  # nothing was sent: safe to try another engine
                self._upstream_failed(call, engine, client_span, "connect", exc)
                self.router.mark_failed(engine, f"connect: {exc}")
                self.publish_routing()
                continue
            except httpx.TimeoutException as exc:
                call.timeline.mark("network", sent_at[0] if sent_at else None)
                self._upstream_failed(
                    call,
                    engine,
                    client_span,
                    "connect" if isinstance(exc, httpx.ConnectTimeout) else "timeout",
                    exc,
                )
                raise GatewayError(
                    504,
                    f"engine {engine.name} did not answer in time ({type(exc).__name__})",
                    None,
                    "upstream_timeout",
                ) from None
            except httpx.HTTPError as exc:
                call.timeline.mark("network", sent_at[0] if sent_at else None)
                self._upstream_failed(call, engine, client_span, "connect", exc)
                self.router.mark_failed(engine, f"{type(exc).__name__}: {exc}")
                self.publish_routing()
                raise GatewayError(
                    502,
                    f"engine {engine.name} failed: {type(exc).__name__}",
                    None,
                    "upstream_error",
                ) from None
            break

        call.span.set_attribute("sandbox.version", version)
        call.span.set_attribute("sandbox.engine", engine.name)
        call.timeline.mark("network", sent_at[0] if sent_at else None)
        if stream and response.status_code == 200:
            self._maybe_shadow(call, payload)
            return response, client_span
        # A complete answer, or an error status: read the body and answer it now.
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            call.timeline.mark("upstream_ttft")
            timeout = isinstance(exc, httpx.TimeoutException)
            self._upstream_failed(
                call, engine, client_span, "timeout" if timeout else "connect", exc
            )
            if timeout:
                raise GatewayError(
                    504, f"engine {engine.name} did not answer in time", None, "upstream_timeout"
                ) from None
            self.router.mark_failed(engine, f"{type(exc).__name__}: {exc}")
            self.publish_routing()
            raise GatewayError(
                502, f"engine {engine.name} failed: {type(exc).__name__}", None, "upstream_error"
            ) from None
        finally:
            await response.aclose()
        call.timeline.mark("upstream_ttft")
        if response.status_code >= 500:
            self._upstream_failed(call, engine, client_span, "status", None, response.status_code)
            raise GatewayError(
                502,
                f"engine {engine.name} answered {response.status_code}: {body[:300].decode(errors='replace')}",
                None,
                "upstream_error",
            )
        client_span.set_attribute("http.response.status_code", response.status_code)
        client_span.end()
        if response.status_code == 200:  # a non-streaming answer, complete
            self._maybe_shadow(call, payload)
            return response, client_span
        raise _Relayed(response.status_code, body)

    def _upstream_failed(
        self,
        call: _Call,
        engine: Engine,
        span: Span,
        kind: str,
        exc: BaseException | None,
        status: int | None = None,
    ) -> None:
        self.metrics.upstream_errors_total.labels(version=engine.version, kind=kind).inc()
        detail = f"{type(exc).__name__}: {exc}" if exc else f"status {status}"
        span.set_status(Status(StatusCode.ERROR, detail))
        span.set_attribute("sandbox.upstream_error", kind)
        span.end()
        log.warning(
            "upstream %s error from %s: %s",
            kind,
            engine.name,
            detail,
            extra={"trace_id": trace_id_of(call.span)},
        )

    async def _complete(self, call: _Call, payload: bytes) -> Response:
        response, _ = await self._open_upstream(call, payload, stream=False)
        body = response.content
        call.timeline.mark("decode")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            usage = json.loads(body)["usage"]
            call.prompt_tokens = int(usage["prompt_tokens"])
            call.completion_tokens = int(usage["completion_tokens"])
        return Response(body, 200, media_type="application/json")

    async def _until_disconnect(self, request: Request, work: Any) -> Response:
        """Run ``work``; if the client goes away first, cancel it (closing the engine's request)."""
        task = asyncio.ensure_future(work)

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self.metrics.disconnects_total.labels(route=request.url.path).inc()
        raise GatewayError(CLIENT_CLOSED, "client closed the request", None, "client_closed")

    # -- Shadow ----------------------------------------------------------------------------

    def _maybe_shadow(self, call: _Call, payload: bytes) -> None:
        target = self.router.shadow_target(call.version)
        if target is None:
            return
        if self._shadow_in_flight >= self.options.max_shadow_in_flight:
            self.metrics.shadow_requests_total.labels(
                version=target.version, outcome="skipped"
            ).inc()
            return
        body = json.loads(payload)
        body["stream"] = False
        body.pop("stream_options", None)
        task = asyncio.ensure_future(self._shadow(call, target, body))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shadow(self, call: _Call, engine: Engine, body: dict[str, Any]) -> None:
        self._shadow_in_flight += 1
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
            self._shadow_in_flight -= 1
            self.metrics.shadow_requests_total.labels(version=engine.version, outcome=outcome).inc()

    # -- Accounting -----------------------------------------------------------------------

    def _publish_admission(self) -> None:
        admission = getattr(self, "admission", None)
        if admission is not None:
            self.metrics.in_flight_tokens.set(admission.tokens)
            self.metrics.queue_depth.set(admission.queued)

    def _finish(self, call: _Call) -> None:
        """Record the request once: phases, histograms, counters, spans, admission release."""
        if call.finished:
            return
        call.finished = True
        timeline = call.timeline
        # A request refused before it was admitted spent all its time in admission (parsing and
        # checks included); any other ends with postprocess.
        timeline.mark("postprocess" if timeline.phases else "admission")
        if call.ticket is not None:
            self.admission.release(call.ticket)
            call.ticket = None
        self.metrics.in_flight_requests.dec()

        span, m = call.span, self.metrics
        exemplar = exemplar_of(span)
        labels = {"version": call.version, "tenant": call.tenant}
        durations: dict[str, float] = {}
        for phase, start, end in timeline.phases:
            durations[phase] = durations.get(phase, 0.0) + (end - start)
            if phase not in call.live_spans:
                self.tracer.start_span(
                    phase, context=call.ctx, start_time=timeline.wall_ns(start)
                ).end(end_time=timeline.wall_ns(end))
        for phase, seconds in durations.items():
            m.phase_seconds.labels(phase=phase, **labels).observe(seconds, exemplar)
        e2e = timeline.last - timeline.t0
        cls = status_class(call.status)
        m.request_duration_seconds.labels(route=call.route, status_class=cls, **labels).observe(
            e2e, exemplar
        )
        m.requests_total.labels(route=call.route, status_class=cls, **labels).inc()
        if call.status == 200:
            # Only streamed answers have a first token the client sees before the last; counting
            # a whole non-streamed answer as TTFT would make every batch tenant breach the SLO.
            if timeline.first_token is not None:
                m.time_to_first_token_seconds.labels(**labels).observe(
                    timeline.first_token - timeline.t0, exemplar
                )
            if call.prompt_tokens is not None:
                m.tokens_total.labels(kind="prompt", **labels).inc(call.prompt_tokens)
                span.set_attribute("gen_ai.usage.input_tokens", call.prompt_tokens)
            if call.completion_tokens is not None:
                m.tokens_total.labels(kind="completion", **labels).inc(call.completion_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", call.completion_tokens)
        span.set_attribute("http.response.status_code", call.status)
        if call.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=timeline.wall_ns(timeline.last))
        log.info(
            "request",
            extra={
                "route": call.route,
                "status": call.status,
                "version": call.version,
                "tenant": call.tenant,
                "engine": call.engine.name if call.engine else None,
                "e2e_s": round(e2e, 6),
                "trace_id": trace_id_of(span),
                "phases": {k: round(v, 6) for k, v in durations.items()},
            },
        )


class _Relayed(Exception):
    """The engine refused the request (4xx): its answer goes to the client as it is."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class _RelayResponse(StreamingResponse):
    """A streamed answer relayed event by event from the engine.

    Whatever ends it (the last event, an engine failure, the client leaving before or during the
    stream), ``__call__``'s ``finally`` closes the engine's response, which makes vLLM abort the
    request, and accounts the request exactly once.
    """

    def __init__(
        self, gateway: Gateway, call: _Call, upstream: httpx.Response, client_span: Span
    ) -> None:
        self.gateway, self.call, self.upstream, self.client_span = (
            gateway,
            call,
            upstream,
            client_span,
        )
        self.completed = False
        super().__init__(
            self._events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _events(self) -> AsyncIterator[bytes]:
        call, timeline = self.call, self.call.timeline
        wants_usage = call.parsed.wants_usage if call.parsed else False
        buffer = b""
        try:
            async for chunk in self.upstream.aiter_bytes():
                buffer += chunk
                if b"\n\n" not in buffer:
                    continue
                if timeline.first_token is None:
                    timeline.mark("upstream_ttft")
                # Every complete event of this read goes out in one write: on a busy machine each
                # write is a wake-up of the client, and fewer of them is what keeps TTFT close.
                *events, buffer = buffer.split(b"\n\n")
                out = []
                for event in events:
                    if event.startswith(b"data: {") and b'"usage"' in event:
                        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                            data = json.loads(event[6:])
                            usage = data["usage"]
                            call.prompt_tokens = int(usage["prompt_tokens"])
                            call.completion_tokens = int(usage["completion_tokens"])
                            if not wants_usage and not data.get("choices"):
                                continue  # the usage-only chunk we asked for on our own account
                    out.append(event + b"\n\n")
                if out:
                    yield b"".join(out)
                    if timeline.first_token is None:
                        timeline.first_token = time.perf_counter()
            self.completed = True
        except httpx.HTTPError as exc:
            # The engine failed mid-stream: the status is sent already, so say it in the stream.
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect"
            self.gateway.metrics.upstream_errors_total.labels(version=call.version, kind=kind).inc()
            self.client_span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            call.status = 504 if kind == "timeout" else 502
            yield sse_error(
                call.status, f"engine failed mid-stream: {type(exc).__name__}", "upstream_error"
            )
        if timeline.first_token is None:
            timeline.mark("upstream_ttft")
        timeline.mark("decode")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            if not self.completed and self.call.status == 200:
                timeline = self.call.timeline
                timeline.mark("decode" if timeline.first_token is not None else "upstream_ttft")
                self.call.status = CLIENT_CLOSED
                self.gateway.metrics.disconnects_total.labels(route=self.call.route).inc()
            self.client_span.end()
            self.gateway._finish(self.call)
