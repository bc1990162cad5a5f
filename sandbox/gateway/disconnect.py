"""Client disconnects: a client that goes away must not leave its request running in an engine.

A non-streamed request waits for its whole answer; ``until_disconnect`` races that wait against
the client's ``http.disconnect`` and cancels the work (closing the engine's response, which
makes vLLM abort the request) when the client goes first. Streams notice the disconnect in the
relay (``relay.RelayResponse``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from sandbox.gateway.errors import GatewayError

__all__ = ["CLIENT_CLOSED", "until_disconnect"]

CLIENT_CLOSED = 499  # nginx's code for "the client went away"; counted as 4xx


async def until_disconnect(
    request: Request, work: Awaitable[Response], on_disconnect: Callable[[], None]
) -> Response:
    """Run ``work``; if the client goes away first, cancel it and answer 499."""
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
    on_disconnect()
    raise GatewayError(CLIENT_CLOSED, "client closed the request", None, "client_closed")
