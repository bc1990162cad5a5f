"""Decode an OTLP/HTTP trace export body (protobuf or JSON) into OTLP JSON.

OTLP JSON differs from protobuf's generic JSON mapping in one way that matters here: trace and
span ids are lowercase hex, not base64. Enums stay integers and 64-bit integers strings, as the
OTLP JSON encoding allows.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sandbox.exceptions import ConfigError

__all__ = ["OtlpDecodeError", "decode_export", "decompress"]

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpDecodeError(ConfigError):
    """The body is not an OTLP trace export; the message says what is wrong with it."""


def decompress(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error) as exc:
        raise OtlpDecodeError(f"body is not valid {encoding}: {exc}") from exc
    if encoding != "identity":
        raise OtlpDecodeError(f"unsupported Content-Encoding {encoding!r} (gzip, deflate or none)")
    return body


def _hex_ids(obj: dict[str, Any]) -> None:
    for field in _ID_FIELDS:
        value = obj.get(field)
        if value:
            obj[field] = base64.b64decode(value).hex()


def _protobuf_to_json(body: bytes) -> dict[str, Any]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"body is not an ExportTraceServiceRequest: {exc}") from exc
    data = MessageToDict(request, use_integers_for_enums=True)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return data


def decode_export(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The export request as OTLP JSON, from a protobuf or JSON body."""
    kind = (content_type or "application/x-protobuf").split(";")[0].strip().lower()
    if kind in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
        return _protobuf_to_json(body)
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise OtlpDecodeError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("resourceSpans", []), list):
            raise OtlpDecodeError("JSON body must be an object with a resourceSpans list")
        return data
    raise OtlpDecodeError(
        f"unsupported Content-Type {kind!r} (application/x-protobuf or application/json)"
    )
