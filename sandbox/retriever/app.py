"""The retriever's HTTP app: routes only; the logic is in ``service.Retriever``.

Routes: ``POST /search``, ``GET /ready`` (index built), ``GET /health`` (process alive and
start-up not failed), ``GET /metrics``, and the fault hook ``GET|PUT|DELETE /admin/fault``.
Every error answer has the OpenAI shape (``sandbox.openai_errors``): request validation errors
are 400 with ``param`` naming the field, a search before the index is built is 503.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.admin_paths import RETRIEVER_PATHS
from sandbox.openai_errors import error_response as _error
from sandbox.retriever.config import RetrieverOptions
from sandbox.retriever.faults import FaultState, RetrieverFaultError, parse_fault
from sandbox.retriever.metrics import STEPS, RetrieverMetrics
from sandbox.retriever.protocol import Passage, SearchRequest, SearchResponse, Timings
from sandbox.retriever.service import NotReadyError, Retriever, State
from sandbox.settings import Settings
from sandbox.telemetry import configure_tracing, exemplar_of, extract_context, render_metrics
from sandbox.validation import field_problems

__all__ = ["create_app"]

log = logging.getLogger("sandbox.retriever")


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if errors and errors[0].get("type") == "json_invalid":
        return _error(
            400, f"request body is not valid JSON: {errors[0].get('msg')}", None, "invalid_json"
        )
    problems = field_problems(errors, default="body", skip=("body",))
    message = "; ".join(f"{field}: {msg}" for field, msg in problems)
    return _error(400, message, problems[0][0] if problems else None, "invalid_value")


def create_app(
    options: RetrieverOptions, settings: Settings | None = None, start: bool = True
) -> FastAPI:
    """The app; with ``start`` the model and index load in a background thread at start-up.

    Spans go to ``options.otlp_endpoint``, else where ``sandbox.telemetry`` finds an endpoint
    (OTEL_* variables, then the local trace sink of ``settings``), else nowhere.
    """
    metrics = RetrieverMetrics()
    tracing = configure_tracing(options.service_name, settings, endpoint=options.otlp_endpoint)
    tracer = tracing.tracer
    faults = FaultState(on_change=lambda phase, mean: metrics.injected[phase].set(mean))
    retriever = Retriever(options, metrics, tracer, faults)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            # /health answers while the model loads (tens of seconds on a busy machine);
            # /ready turns 200 when the index is built.
            threading.Thread(target=retriever.start, name="retriever-startup", daemon=True).start()
        yield
        retriever.close()
        tracing.shutdown()

    app = FastAPI(title="sandbox retriever", lifespan=lifespan)
    app.state.retriever = retriever
    app.state.metrics = metrics
    app.state.faults = faults

    # -- Errors ---------------------------------------------------------------------------

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), None, None)

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}", None, "internal_error")

    # -- The server span, request count and duration of /search ----------------------------

    @app.middleware("http")
    async def trace_search(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path != "/search":
            return await call_next(request)
        started = time.perf_counter()
        with tracer.start_as_current_span(
            "POST /search", context=extract_context(request.headers), kind=SpanKind.SERVER
        ) as span:
            try:
                response = await call_next(request)
            except Exception:
                # Starlette's outermost handler turns this into a 500 after us; count it as one.
                metrics.requests["5xx"].inc()
                raise
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        elapsed = time.perf_counter() - started
        status_class = f"{min(response.status_code // 100, 5)}xx"
        metrics.requests.get(status_class, metrics.requests["5xx"]).inc()
        metrics.request_duration_seconds.observe(elapsed, exemplar_of(span))
        return response

    # -- Routes ---------------------------------------------------------------------------

    @app.post("/search", response_model=SearchResponse)
    async def search(body: SearchRequest) -> Any:
        if not body.query.strip():
            return _error(400, "query: must contain non-whitespace text", "query", "invalid_value")
        if len(body.query) > options.max_query_chars:
            return _error(
                400,
                f"query: longer than {options.max_query_chars} characters",
                "query",
                "invalid_value",
            )
        if body.k > options.max_k:
            return _error(400, f"k: must be at most {options.max_k}", "k", "invalid_value")
        try:
            result = await retriever.search(body.query, body.k)
        except NotReadyError as exc:
            return _error(503, f"retriever not ready: {exc}", None, "not_ready")
        span = trace.get_current_span()
        span.set_attribute("sandbox.retriever.k", body.k)
        span.set_attribute("sandbox.retriever.results", len(result.passages))
        log.info(
            "search",
            extra={
                "k": body.k,
                "results": len(result.passages),
                "timings": {p: round(s, 6) for p, s in result.timings.items()},
            },
        )
        return SearchResponse(
            passages=[
                Passage(text=c.text, score=c.score, source=c.source) for c in result.passages
            ],
            timings=Timings(**result.timings),
        )

    @app.get("/health")
    async def health() -> Any:
        if retriever.state is State.FAILED:
            return _error(500, f"start-up failed: {retriever.error}", None, "startup_failed")
        return {"status": "alive", "state": retriever.state.value}

    @app.get("/ready")
    async def ready() -> Any:
        if retriever.state is not State.READY:
            why = retriever.error or f"index not built yet ({retriever.state.value})"
            return _error(503, why, None, "not_ready")
        return {
            "status": "ready",
            "passages": retriever.passages,
            "model_load_s": retriever.model_load_s,
            "index_build_s": retriever.index_build_s,
        }

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> Response:
        faults.active()  # lets an expired fault clear itself, so the gauge is current
        payload, content_type = render_metrics(metrics.registry, request.headers.get("accept"))
        return Response(payload, media_type=content_type)

    @app.get(RETRIEVER_PATHS.fault)
    async def get_faults() -> Any:
        return {"faults": {phase: fault.describe() for phase, fault in faults.active().items()}}

    @app.put(RETRIEVER_PATHS.fault)
    async def put_fault(request: Request) -> Any:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}", None, "invalid_json")
        try:
            spec = parse_fault(body)
        except RetrieverFaultError as exc:
            return _error(400, str(exc), exc.param, "invalid_value")
        active = faults.set(spec)
        log.warning("fault set", extra={"fault": active.describe()})
        return {"fault": active.describe()}

    @app.delete(RETRIEVER_PATHS.fault)
    async def delete_fault(phase: str | None = None) -> Any:
        if phase is not None and phase not in STEPS:
            return _error(
                400, f"phase: must be one of {', '.join(STEPS)}", "phase", "invalid_value"
            )
        cleared = faults.clear(phase)
        if cleared:
            log.warning("fault cleared", extra={"phases": cleared})
        return {"cleared": cleared}

    return app
