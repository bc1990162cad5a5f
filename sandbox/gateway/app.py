"""The gateway's HTTP app: routes only; the logic is in ``serving.Gateway``.

Client routes: ``POST /v1/completions``, ``POST /v1/chat/completions``, ``GET /v1/models``.
Operations: ``GET /health`` (alive), ``GET /ready`` (an engine is in rotation), ``GET /metrics``
(OpenMetrics with exemplars when asked, as Prometheus does).
Admin (run-time changes, used by the CLI, faults and the autoscaler):

- ``GET /admin/state``: engines, weights, shadow, admission limits and usage, RAG options;
- ``PUT /admin/weights`` ``{"stable": 90, "canary": 10}`` (versions not named get 0);
- ``PUT /admin/shadow`` ``{"version": "canary", "share": 0.1}``, ``DELETE /admin/shadow``;
- ``PUT /admin/admission`` with any fields of ``AdmissionOptions`` (``{"enabled": true}``...);
- ``PUT /admin/rag`` with any fields of ``RagOptions``;
- ``POST /admin/engines`` ``{"name", "version", "url"}``, ``DELETE /admin/engines/{name}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sandbox.admin_paths import GATEWAY_PATHS
from sandbox.gateway.config import (
    AdmissionOptions,
    EngineOptions,
    GatewayOptions,
    RagOptions,
    ShadowOptions,
)
from sandbox.gateway.errors import GatewayError, error_response
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.gateway.protocol import CHAT_ROUTE, COMPLETIONS_ROUTE, json_object
from sandbox.gateway.serving import Gateway
from sandbox.telemetry import Tracing, configure_tracing, render_metrics
from sandbox.validation import field_path

__all__ = ["GatewayApp", "create_app"]

M = TypeVar("M", bound=BaseModel)


async def _json_object(request: Request) -> dict[str, Any]:
    return json_object(await request.body())


async def _body_as(model: type[M], request: Request, current: M | None = None) -> M:
    """The request's JSON object validated as ``model``. With ``current`` it is a partial
    update: the fields it leaves out keep their current values."""
    data = await _json_object(request)
    if current is not None:
        data = {**current.model_dump(), **data}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = field_path(error) or None
        raise GatewayError(
            400, f"{param}: {error['msg']}" if param else error["msg"], param, "invalid_value"
        ) from None


@contextlib.contextmanager
def _invalid_value(param: str) -> Iterator[None]:
    """The router's ValueError (a change it refuses) becomes a 400 naming ``param``."""
    try:
        yield
    except ValueError as exc:
        raise GatewayError(400, str(exc), param, "invalid_value") from None


class GatewayApp(FastAPI):
    """FastAPI for every route but the two completion routes, which go straight to the gateway.

    On the path every completion takes, FastAPI's and Starlette's layers are work for nothing:
    ``Gateway.handle`` answers every error itself (a ``GatewayError``, or a 500 for a bug), so
    the error middlewares have nothing to catch; the body-size limit is the gateway's own; FastAPI's
    native OpenTelemetry is off (the gateway's tracer provider is its own, not the global one).
    Yet each layer wraps ``send``, so every relayed chunk went through three more coroutines, and
    each request through the router's matching and four middlewares. Any other method or path
    (a ``GET`` of a completion route: 405) takes FastAPI's way.
    """

    def __init__(self, gateway: Gateway, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gateway = gateway
        self._completion_routes = {route: route for route in (COMPLETIONS_ROUTE, CHAT_ROUTE)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._completion_routes.get(scope["path"])
            if route is not None:
                response = await self.gateway.handle(Request(scope, receive), route)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(options: GatewayOptions, tracing: Tracing | None = None) -> FastAPI:
    metrics = GatewayMetrics()
    tracing = tracing or configure_tracing("gateway", None, endpoint="none")
    gateway = Gateway(options, metrics, tracing.tracer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.router.probe(gateway.client)  # know the engines before the first request
        gateway.publish_routing()
        prober = asyncio.ensure_future(gateway.run_prober())
        yield
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
        await gateway.close()
        tracing.shutdown()

    app = GatewayApp(
        gateway,
        title="sandbox gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    app.state.metrics = metrics

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(
            exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", None, code
        )

    # -- OpenAI routes ----------------------------------------------------------------------

    # A POST never reaches these routes (GatewayApp answers it before FastAPI's layers); they are
    # declared so that the router knows the paths: another method gets 405, not 404.
    async def completions(request: Request) -> Response:
        return await gateway.handle(request, COMPLETIONS_ROUTE)

    async def chat_completions(request: Request) -> Response:
        return await gateway.handle(request, CHAT_ROUTE)

    app.add_route(COMPLETIONS_ROUTE, completions, methods=["POST"])
    app.add_route(CHAT_ROUTE, chat_completions, methods=["POST"])

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": gateway.started, "owned_by": "sandbox"}
                for name in options.models
            ],
        }

    # -- Operations -----------------------------------------------------------------------

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    async def ready() -> Response:
        engines = gateway.router.ready()
        if not engines:
            return error_response(503, "no engine in rotation", None, "no_engine")
        return JSONResponse({"status": "ready", "engines": [e.name for e in engines]})

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> Response:
        payload, content_type = render_metrics(metrics.registry, request.headers.get("accept"))
        return Response(payload, media_type=content_type)

    # -- Admin ----------------------------------------------------------------------------

    def state() -> dict[str, Any]:
        admission = gateway.admission
        return {
            "engines": [e.describe() for e in gateway.router.engines.values()],
            "weights": gateway.router.weights,
            "shadow": gateway.router.shadow.model_dump() if gateway.router.shadow else None,
            "admission": {
                **admission.options.model_dump(),
                "in_flight_tokens": admission.tokens,
                "in_flight_sequences": admission.sequences,
                "queued": admission.queued,
            },
            "rag": options.rag.model_dump(),
        }

    @app.get(GATEWAY_PATHS.state)
    async def get_state() -> dict[str, Any]:
        return state()

    @app.put(GATEWAY_PATHS.weights)
    async def put_weights(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in body.values()):
            raise GatewayError(
                400, "weights: every value must be a number", "weights", "invalid_type"
            )
        with _invalid_value("weights"):
            gateway.router.set_weights({str(k): float(v) for k, v in body.items()})
        gateway.publish_routing()
        return state()

    @app.put(GATEWAY_PATHS.shadow)
    async def put_shadow(request: Request) -> dict[str, Any]:
        shadow = await _body_as(ShadowOptions, request)
        with _invalid_value("version"):
            gateway.router.set_shadow(shadow)
        return state()

    @app.delete(GATEWAY_PATHS.shadow)
    async def delete_shadow() -> dict[str, Any]:
        gateway.router.set_shadow(None)
        return state()

    @app.put(GATEWAY_PATHS.admission)
    async def put_admission(request: Request) -> dict[str, Any]:
        admission = await _body_as(AdmissionOptions, request, gateway.admission.options)
        gateway.admission.configure(admission)
        return state()

    @app.put(GATEWAY_PATHS.rag)
    async def put_rag(request: Request) -> dict[str, Any]:
        options.rag = await _body_as(RagOptions, request, options.rag)
        return state()

    @app.post(GATEWAY_PATHS.engines)
    async def post_engine(request: Request) -> dict[str, Any]:
        engine = await _body_as(EngineOptions, request)
        with _invalid_value("name"):
            gateway.router.add(engine)
        await gateway.router.probe(gateway.client)
        gateway.publish_routing()
        return state()

    @app.delete(GATEWAY_PATHS.engine)
    async def delete_engine(name: str) -> dict[str, Any]:
        try:
            gateway.router.remove(name)
        except KeyError:
            raise GatewayError(404, f"no engine named {name!r}", "name", "not_found") from None
        gateway.publish_routing()
        return state()

    return app
