"""The call to an engine: choose one, send (trying the next engine when a connection is refused),
and turn its failures into answers.

``upstream.send`` ends when the request has been written to the socket, so what follows,
``upstream.first_token``, is the wire and the engine. Only a refused connection is retried: then
nothing was sent, so no engine can have started the request.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import httpx
from fastapi.responses import Response
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from sandbox.gateway.call import FIRST_TOKEN, SEND, STREAM, Call
from sandbox.gateway.errors import GatewayError, UpstreamFailure, upstream_failure
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.gateway.routing import Engine, NoEngineError, Router
from sandbox.httpstream import StreamClient, StreamResponse
from sandbox.telemetry import inject_context, trace_id_of

__all__ = ["Relayed", "Upstream"]

log = logging.getLogger("sandbox.gateway")

_JSON = {"content-type": "application/json"}


class Relayed(GatewayError):
    """The engine refused the request (4xx): its answer goes to the client as it is."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, "relayed from the engine")
        self.body = body

    def response(self) -> Response:  # type: ignore[override]
        return Response(self.body, self.status, media_type="application/json")


class Upstream:
    def __init__(
        self,
        engines: StreamClient,
        router: Router,
        metrics: GatewayMetrics,
        tracer: trace.Tracer,
    ) -> None:
        self.engines = engines
        self.router = router
        self.metrics = metrics
        self.tracer = tracer
        self._errors: dict[tuple[str, str], Any] = {}  # bound counters, looked up once

    def publish_routing(self) -> None:
        for version in self.router.versions:
            self.metrics.route_weight.labels(version=version).set(
                self.router.weights.get(version, 0.0)
            )
            self.metrics.ready_engines.labels(version=version).set(len(self.router.ready(version)))

    def count_error(self, version: str, kind: str) -> None:
        counter = self._errors.get((version, kind))
        if counter is None:
            counter = self._errors[(version, kind)] = self.metrics.upstream_errors_total.labels(
                version=version, kind=kind
            )
        counter.inc()

    async def open(self, call: Call, payload: bytes, stream: bool) -> tuple[StreamResponse, Span]:
        """Send the request to an engine; return once the response headers are in.

        A streamed 200 is returned open (the relay reads it); anything else is read whole: a
        complete answer (200) is returned, an engine 4xx raises ``Relayed``, a failure
        ``UpstreamFailure``.
        """
        tried: set[str] = set()
        sent_at: list[float] = []
        while True:
            try:
                version = self.router.choose_version(exclude=tried)
                engine = self.router.choose_engine(version, exclude=tried)
            except NoEngineError as exc:
                call.timeline.mark(SEND)
                self.publish_routing()
                raise GatewayError(503, f"no engine available: {exc}", None, "no_engine") from None
            call.send_to(version, engine)
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
            headers = inject_context(dict(_JSON), trace.set_span_in_context(client_span))
            try:
                response = await self.engines.post(
                    f"{engine.url}{call.route}", payload, headers, sent_at
                )
            except httpx.ConnectError as exc:  # nothing was sent: safe to try another engine
                self.failed(call, engine, client_span, upstream_failure(engine.name, exc), exc)
                self.router.mark_failed(engine, f"connect: {exc}")
                self.publish_routing()
                continue
            except httpx.HTTPError as exc:
                call.timeline.mark(SEND, sent_at[0] if sent_at else None)
                raise self.failed(
                    call, engine, client_span, upstream_failure(engine.name, exc), exc
                ) from None
            break

        call.span.set_attributes({"sandbox.version": version, "sandbox.engine": engine.name})
        call.timeline.mark(SEND, sent_at[0] if sent_at else None)
        if stream and response.status_code == 200:
            return response, client_span
        # A complete answer, or an error status: read the body and answer it now.
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            call.timeline.mark(FIRST_TOKEN)
            raise self.failed(
                call, engine, client_span, upstream_failure(engine.name, exc), exc
            ) from None
        finally:
            await response.aclose()
        call.timeline.mark(FIRST_TOKEN)
        if response.status_code >= 500:
            detail = f": {body[:300].decode(errors='replace')}"
            failure = upstream_failure(engine.name, status=response.status_code, detail=detail)
            raise self.failed(call, engine, client_span, failure, None)
        client_span.set_attribute("http.response.status_code", response.status_code)
        client_span.end()
        if response.status_code == 200:  # a non-streaming answer, complete
            return response, client_span
        raise Relayed(response.status_code, body)

    async def complete(self, call: Call, payload: bytes) -> Response:
        """A non-streamed request: the whole answer, its usage counted."""
        response, _ = await self.open(call, payload, stream=False)
        body = response.content
        call.timeline.mark(STREAM)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            usage = json.loads(body)["usage"]
            call.prompt_tokens = int(usage["prompt_tokens"])
            call.completion_tokens = int(usage["completion_tokens"])
        return Response(body, 200, media_type="application/json")

    def failed(
        self,
        call: Call,
        engine: Engine,
        span: Span,
        failure: UpstreamFailure,
        exc: BaseException | None,
    ) -> UpstreamFailure:
        """Count, trace and log one failed engine call; mark the engine down unless it was slow."""
        self.count_error(engine.version, failure.kind)
        detail = f"{type(exc).__name__}: {exc}" if exc else failure.message
        span.set_status(Status(StatusCode.ERROR, detail))
        span.set_attribute("sandbox.upstream_error", failure.kind)
        span.end()
        log.warning(
            "upstream %s error from %s: %s",
            failure.kind,
            engine.name,
            detail,
            extra={"trace_id": trace_id_of(call.span)},
        )
        if exc is not None and failure.status == 502 and not isinstance(exc, httpx.ConnectError):
            self.router.mark_failed(engine, f"{type(exc).__name__}: {exc}")
            self.publish_routing()
        return failure
