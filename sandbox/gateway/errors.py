"""Every error the gateway answers, in OpenAI's shape, built by one function.

``{"error": {"message", "type", "param", "code"}}``. Client mistakes are 4xx with ``param``
naming the field; an unknown model is 404 with ``param="model"``; a shed request is 429 with
``Retry-After``; an engine failure is 502 (bad answer), 503 (no engine) or 504 (too slow).
A server fault is never reported as a client error.
"""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse

from sandbox.exceptions import SandboxError

__all__ = ["GatewayError", "error_body", "error_response", "sse_error"]

_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


class GatewayError(SandboxError):
    """An answer that is not a completion: carries the status and the OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.param, self.code, self.headers)


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message, param, code), status_code=status, headers=headers
    )


def sse_error(status: int, message: str, code: str | None = None) -> bytes:
    """The same error as a server-sent event, for a stream that already started."""
    return f"data: {json.dumps(error_body(status, message, None, code))}\n\n".encode()
