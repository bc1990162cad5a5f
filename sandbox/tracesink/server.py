"""The receiver's HTTP app: ``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON) and ``GET /health``.

A body that cannot be decoded gets 400 with the reason (the exporter logs it); an accepted one
gets an empty ``ExportTraceServiceResponse`` in the encoding it came in, as OTLP/HTTP asks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from sandbox.tracesink.otlp import OtlpDecodeError, decode_export, decompress
from sandbox.tracesink.store import DEFAULT_MAX_BYTES, SpanFile

__all__ = ["create_app"]

log = logging.getLogger("sandbox.tracesink")

_EMPTY_PROTOBUF_RESPONSE = ExportTraceServiceResponse().SerializeToString()


def create_app(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> FastAPI:
    store = SpanFile(path, max_bytes)
    app = FastAPI(title="sandbox trace sink", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        content_type = request.headers.get("content-type")
        try:
            body = decompress(await request.body(), request.headers.get("content-encoding"))
            export = decode_export(body, content_type)
        except OtlpDecodeError as exc:
            log.warning("rejected export: %s", exc)
            return JSONResponse({"code": 3, "message": str(exc)}, status_code=400)
        store.append(export)
        if (content_type or "").startswith("application/json"):
            return JSONResponse({})
        return Response(_EMPTY_PROTOBUF_RESPONSE, media_type="application/x-protobuf")

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {
            "status": "alive",
            "path": str(store.path),
            "requests": store.requests,
            "spans": store.spans,
        }

    return app
