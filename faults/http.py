"""HTTP calls of the changes, with errors translated at the boundary.

A refused connection becomes ``TargetGone`` (the process is not running, so any in-memory
change it held is gone too); any other failure becomes ``FaultError`` naming the call.
"""

from __future__ import annotations

from typing import Any

import httpx

from faults.base import FaultError, FaultHandle, StackContext, TargetGone

__all__ = ["HttpStatusError", "call", "put_previous"]


class HttpStatusError(FaultError):
    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def call(
    ctx: StackContext,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    what: str,
) -> Any:
    """One admin call; returns the decoded JSON body (or text)."""
    try:
        with ctx.http() as client:
            response = client.request(method, url, json=json, params=params)
    except httpx.ConnectError as exc:
        raise TargetGone(
            f"{what}: nothing listens at {url} ({type(exc).__name__}); is it running?"
        ) from exc
    except httpx.HTTPError as exc:
        raise FaultError(f"{what}: {method} {url} failed: {type(exc).__name__}: {exc}") from exc
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        message = body
        if isinstance(body, dict):
            error = body.get("error")
            message = (
                error.get("message", error)
                if isinstance(error, dict)
                else (error or body.get("detail", body))
            )
        raise HttpStatusError(
            f"{what}: {method} {url} answered {response.status_code}: {message}",
            response.status_code,
            body,
        )
    return body


def put_previous(ctx: StackContext, url: str, handle: FaultHandle, *, what: str) -> None:
    """The undo of a change PUT to an admin path: PUT back the values its ``prepare`` read
    (``handle.undo["previous"]``); a value that was unset then is left as it is."""
    previous = {k: v for k, v in handle.undo.get("previous", {}).items() if v is not None}
    if previous:
        call(ctx, "PUT", url, json=previous, what=what)
