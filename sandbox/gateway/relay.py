"""The SSE relay: a streamed answer passed from the engine to the client as it comes.

The relay does as little as it can per read: it forwards every complete event of a read in one
write, without decoding it. Only the event that carries token counts (``"prompt_tokens"`` appears
in no other: vLLM sends ``"usage":null`` until the last one) is parsed, to count the tokens; it is
dropped when the gateway asked for it on its own account (the client did not ask for usage).

It is an ASGI response of its own rather than Starlette's ``StreamingResponse``, whose task group
(one task reading the body, one waiting for the client to leave) adds a layer of coroutines and
cancel scopes to every chunk. Here the relay loop runs in the request's task and a plain task
waits for ``http.disconnect``: when the client leaves first, it aborts the engine's answer, and
the read the loop is waiting on fails at once.

Whatever ends the stream (the last event, an engine failure, the client leaving before or
during it), ``__call__``'s ``finally`` closes the engine's response, which makes vLLM abort the
request, and accounts the request exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import httpx
from opentelemetry.trace import Span, Status, StatusCode
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.gateway.call import FIRST_TOKEN, STREAM, Call
from sandbox.gateway.disconnect import CLIENT_CLOSED
from sandbox.gateway.errors import sse_error, upstream_failure
from sandbox.httpstream import StreamResponse

__all__ = ["RelayResponse"]

_EVENT_END = b"\n\n"
_USAGE_MARK = b'"prompt_tokens"'
_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_BODY = "http.response.body"


def take_usage(call: Call, events: bytes, keep_usage_only: bool) -> bytes:
    """Count the tokens of the usage event(s) among ``events``; drop a usage-only event unless kept."""
    out = []
    for event in events.split(_EVENT_END):
        if not event:
            continue
        if _USAGE_MARK in event and event.startswith(b"data: {"):
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                data = json.loads(event[6:])
                usage = data["usage"]
                call.prompt_tokens = int(usage["prompt_tokens"])
                call.completion_tokens = int(usage["completion_tokens"])
                if not keep_usage_only and not data.get("choices"):
                    continue  # the usage-only chunk we asked for on our own account
        out.append(event + _EVENT_END)
    return b"".join(out)


class RelayResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        call: Call,
        upstream: StreamResponse,
        client_span: Span,
        count_error: Callable[[str, str], None],
        on_disconnect: Callable[[str], None],
        finish: Callable[[Call], None],
    ) -> None:
        self.call = call
        self.upstream = upstream
        self.client_span = client_span
        self._count_error = count_error
        self._on_disconnect = on_disconnect
        self._finish = finish
        self.completed = False  # the engine's answer was relayed to its end
        self.client_gone = False
        self.status_code = 200
        self.background = None
        self.init_headers(_HEADERS)

    async def _relay(self, send: Send) -> None:
        call, timeline = self.call, self.call.timeline
        keep_usage_only = call.parsed.wants_usage if call.parsed else False
        buffer = b""
        try:
            async for chunk in self.upstream.aiter_raw():
                if buffer:
                    chunk = buffer + chunk
                end = chunk.rfind(_EVENT_END)
                if end < 0:
                    buffer = chunk
                    continue
                end += 2
                buffer, out = chunk[end:], chunk[:end]
                if timeline.first_token is None:
                    timeline.mark(FIRST_TOKEN)
                if _USAGE_MARK in out:
                    out = take_usage(call, out, keep_usage_only)
                # Every complete event of this read goes out in one write: on a busy machine each
                # write is a wake-up of the client, and fewer of them is what keeps TTFT close.
                if out:
                    await send({"type": _BODY, "body": out, "more_body": True})
                    if timeline.first_token is None:
                        timeline.first_token = time.perf_counter()
            self.completed = True
        except httpx.HTTPError as exc:
            if self.client_gone:
                return  # the abort was ours: nobody is left to tell
            # The engine failed mid-stream: the status is sent already, so say it in the stream.
            failure = upstream_failure(call.engine.name if call.engine else "?", exc)
            self._count_error(call.version, failure.kind)
            self.client_span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            call.status = failure.status
            error = sse_error(
                call.status, f"engine failed mid-stream: {type(exc).__name__}", "upstream_error"
            )
            await send({"type": _BODY, "body": error, "more_body": True})
        if timeline.first_token is None:
            timeline.mark(FIRST_TOKEN)
        timeline.mark(STREAM)
        await send({"type": _BODY, "body": b"", "more_body": False})

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.completed:
            self.client_gone = True
            self.upstream.abort()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await self._relay(send)
        finally:
            watcher.cancel()
            await self.upstream.aclose()  # no await inside: it runs to its end even when cancelled
            call = self.call
            if not self.completed and call.status == 200:
                call.timeline.mark(STREAM if call.timeline.first_token is not None else FIRST_TOKEN)
                call.status = CLIENT_CLOSED
                self._on_disconnect(call.route)
            self.client_span.end()
            self._finish(call)
