"""One request of the load generator: send it, read the answer as it arrives, measure it.

Measurements, client side, from the moment the request is handed to the HTTP client: TTFT
(first chunk carrying a token), TPOT (time from the first to the last token divided by the
tokens after the first), E2E (end of the answer), output and prompt tokens as the server's
``usage`` reports them, and the outcome (ok, 4xx, 5xx, timeout, cancelled).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.httpstream import StreamClient
from sandbox.loadgen.results import RequestResult

__all__ = ["AnswerReader", "PlannedRequest", "send_request"]

log = logging.getLogger("sandbox.loadgen")


@dataclass
class PlannedRequest:
    """A request built before its start time (so building it does not delay the start)."""

    tenant: str
    scheduled_s: float
    body: dict[str, Any]
    headers: dict[str, str]
    path: str
    payload: bytes  # the JSON body, encoded before the start time
    prompt_tokens: int
    max_tokens: int
    rag: bool
    stream: bool


async def send_request(
    p: PlannedRequest,
    index: int,
    *,
    clock: Callable[[], float],
    fast: StreamClient | None,
    client: httpx.AsyncClient | None,
    target: str,
    timeout_s: float,
) -> RequestResult:
    """Send one request to ``target`` (a base URL) with the fast client when there is one (else
    httpx, whose base URL is the target already) and measure it."""
    started = clock()
    r = RequestResult(
        p.tenant, index, p.scheduled_s, started, p.prompt_tokens, p.max_tokens, p.rag, p.stream
    )
    reader = AnswerReader(clock, p.stream)
    try:
        async with asyncio.timeout(timeout_s):
            headers = {"Content-Type": "application/json", **p.headers}
            if fast is not None:
                answer = await fast.post(target + p.path, p.payload, headers)
                try:
                    r.status = answer.status_code
                    await reader.read(answer.aiter_raw(), r)
                finally:
                    await answer.aclose()
            else:
                assert client is not None
                async with client.stream(
                    "POST", p.path, content=p.payload, headers=headers
                ) as response:
                    r.status = response.status_code
                    await reader.read(response.aiter_raw(), r)
        r.e2e_s = clock() - started
        if r.status == 200:
            r.outcome = "ok"
        else:
            r.outcome = "4xx" if r.status is not None and 400 <= r.status < 500 else "5xx"
    except TimeoutError:
        r.outcome, r.error = "timeout", f"no complete answer after {timeout_s:g} s"
    except asyncio.CancelledError:
        r.outcome, r.error = "cancelled", "the run stopped while the request was in flight"
    except (httpx.HTTPError, OSError) as exc:
        # Refused, reset or broken connections (ConnectionError is an OSError): the service
        # was not there to answer.
        r.outcome, r.error = "5xx", f"{type(exc).__name__}: {exc}"[:300]
    except ValueError as exc:  # an answer that is not JSON
        r.outcome, r.error = "5xx", f"bad answer: {exc}"[:300]
    except Exception as exc:
        log.exception("request %d failed inside the load generator", index)
        r.outcome, r.error = "5xx", f"load generator error: {type(exc).__name__}: {exc}"[:300]
    if reader.first is not None:
        r.ttft_s = reader.first - started
        if reader.last is not None and r.output_tokens > 1:
            r.tpot_s = (reader.last - reader.first) / (r.output_tokens - 1)
    return r


class AnswerReader:
    """Reads an answer's body as it arrives: SSE events (streaming) or one JSON document.

    Notes the time of the first and last chunk carrying a token, and the ``usage`` the server
    reports (prompt and completion tokens as it counted them)."""

    def __init__(self, clock: Callable[[], float], stream: bool) -> None:
        self.clock = clock
        self.stream = stream
        self.first: float | None = None
        self.last: float | None = None
        self.chunks = 0

    async def read(self, pieces: AsyncIterator[bytes], r: RequestResult) -> None:
        if r.status != 200:
            body = b"".join([piece async for piece in pieces])
            r.error = body[:300].decode(errors="replace")
            return
        if not self.stream:
            body = b"".join([piece async for piece in pieces])
            self._usage(json.loads(body), r)
            return
        buffer = b""
        async for piece in pieces:
            now = self.clock()
            buffer += piece
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                data = json.loads(line[6:])
                if _has_token(data):
                    self.chunks += 1
                    self.last = now
                    if self.first is None:
                        self.first = now
                self._usage(data, r)
        if not r.output_tokens:
            r.output_tokens = self.chunks  # a server that sends no usage: one token per chunk

    @staticmethod
    def _usage(data: dict[str, Any], r: RequestResult) -> None:
        usage = data.get("usage")
        if usage:
            r.prompt_tokens = usage.get("prompt_tokens")
            r.output_tokens = usage.get("completion_tokens") or 0


def _has_token(chunk: dict[str, Any]) -> bool:
    """A stream chunk that carries generated text (a chat stream's first chunk only names the role)."""
    for choice in chunk.get("choices") or ():
        if choice.get("text"):
            return True
        delta = choice.get("delta")
        if delta and delta.get("content"):
            return True
        if choice.get("finish_reason"):
            return True
    return False
