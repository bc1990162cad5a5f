"""Every OpenAI-style error answer of the sandbox's services, built by one function.

``{"error": {"message", "type", "param", "code"}}``: the gateway, the retriever, the load
generator's control API and its stand-in stream server all answer errors in this shape. Client
mistakes are 4xx with ``param`` naming the field; an unknown model or path is 404; a shed
request is 429 with ``Retry-After``; an engine failure is 502 (bad answer), 503 (none
available) or 504 (too slow). A server fault is a 5xx, never reported as a client error.
A stream that has started already carries the same body as a server-sent event (``sse_error``).
The clients of these services read the message back with ``error_message``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox.exceptions import SandboxError

if TYPE_CHECKING:
    import httpx
    from starlette.responses import JSONResponse

__all__ = [
    "ERROR_TYPES",
    "OpenAIError",
    "error_body",
    "error_json",
    "error_message",
    "error_response",
    "sse_error",
]

# The ``type`` field, by status; anything else is a ``server_error``.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    """The error object of one answer."""
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_json(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> bytes:
    """The same, encoded: for servers that write their own bytes (no web framework)."""
    return json.dumps(error_body(status, message, param, code)).encode()


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The same as a Starlette/FastAPI response."""
    from starlette.responses import JSONResponse  # only the web apps pay for the import

    return JSONResponse(
        error_body(status, message, param, code), status_code=status, headers=headers
    )


def sse_error(status: int, message: str, code: str | None = None) -> bytes:
    """The same error as a server-sent event, for a stream whose status is sent already."""
    return b"data: " + error_json(status, message, None, code) + b"\n\n"


def error_message(response: httpx.Response) -> str | None:
    """The ``error.message`` of an answer in this shape; None when the body is not one (a
    proxy's page, a framework's own error), so the caller can fall back to the raw text."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return None if message is None else str(message)


# An exception still: compared by identity, with Exception's repr and ``str`` (the message).
@dataclass(eq=False, repr=False)
class OpenAIError(SandboxError):
    """An answer that is not a success: the status and the OpenAI error fields."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)  # args == (message,), as str(exc) shows it

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.param, self.code, self.headers)
