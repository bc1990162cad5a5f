"""The gateway's errors: the shared OpenAI error shape, and how an engine failure maps to one.

The body, the ``type`` of each status and the streamed form come from ``sandbox.openai_errors``
(shared by every service). What is the gateway's own is the mapping of an engine failure to
the status the client gets, written once here: no answer in time is 504, any other failure
(refused connection, broken stream, an engine 5xx) is 502, and no engine at all is 503.
"""

from __future__ import annotations

import httpx

from sandbox.openai_errors import OpenAIError, error_response, sse_error

__all__ = [
    "GatewayError",
    "UpstreamFailure",
    "error_response",
    "sse_error",
    "upstream_failure",
]


class GatewayError(OpenAIError):
    """An answer of the gateway that is not a completion."""


class UpstreamFailure(GatewayError):
    """An engine failed a request: ``kind`` (connect, timeout, status) labels the error metric."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(
            status, message, None, "upstream_timeout" if status == 504 else "upstream_error"
        )
        self.kind = kind


def upstream_failure(
    engine: str, exc: BaseException | None = None, status: int | None = None, detail: str = ""
) -> UpstreamFailure:
    """The one mapping from an engine's failure (an exception, or a 5xx ``status``) to an answer."""
    if isinstance(exc, httpx.TimeoutException):
        kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "timeout"
        return UpstreamFailure(
            504, f"engine {engine} did not answer in time ({type(exc).__name__}){detail}", kind
        )
    if exc is not None:
        return UpstreamFailure(
            502, f"engine {engine} failed: {type(exc).__name__}{detail}", "connect"
        )
    return UpstreamFailure(502, f"engine {engine} answered {status}{detail}", "status")
