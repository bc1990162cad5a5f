"""Real HTTP servers the gateway and trace sink unit tests run in-process on free ports.

``serve(app)`` runs any ASGI app with uvicorn on a thread; ``upstream_app`` is a tiny
OpenAI-style server (completions and chat, streaming or not, ``/health``, ``/search``) whose
behaviour a test steers through its ``UpstreamState``: delays, failure statuses, and a record of
what it received and which requests the client abandoned.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sandbox.gateway.app import create_app
from sandbox.gateway.config import GatewayOptions
from tests.support import free_port, poll_until

__all__ = ["Server", "UpstreamState", "serve", "upstream_app"]


@dataclass
class Server:
    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    handle = Server(f"http://127.0.0.1:{port}", port, server, thread)
    try:
        poll_until(lambda: server.started, f"uvicorn on port {port}", timeout_s=15, interval_s=0.02)
        yield handle
    finally:
        handle.stop()


@dataclass
class UpstreamState:
    name: str = "upstream"
    token_delay_s: float = 0.0  # between streamed tokens
    first_token_delay_s: float = 0.0
    status: int = 200  # answer every completion with this status
    healthy: bool = True
    search_delay_s: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    active: int = 0
    abandoned: int = 0  # streams the client closed before the end

    def reset(self) -> None:
        self.received.clear()
        self.headers.clear()
        self.abandoned = 0


def _chunk(body: dict[str, Any], text: str, finish: str | None) -> dict[str, Any]:
    if "messages" in body:
        return {
            "object": "chat.completion.chunk",
            "model": body["model"],
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
        }
    return {
        "object": "text_completion",
        "model": body["model"],
        "choices": [{"index": 0, "text": text, "finish_reason": finish}],
    }


def upstream_app(state: UpstreamState) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if state.healthy else 503)

    async def complete(request: Request) -> Response:
        body = await request.json()
        state.received.append(body)
        state.headers.append(dict(request.headers))
        if state.status != 200:
            return JSONResponse(
                {
                    "error": {
                        "message": f"{state.name} says {state.status}",
                        "type": "x",
                        "param": None,
                        "code": None,
                    }
                },
                status_code=state.status,
            )
        n = int(body.get("max_tokens") or 16)
        prompt = body.get("prompt") or json.dumps(body.get("messages"))
        usage = {
            "prompt_tokens": len(str(prompt).split()),
            "completion_tokens": n,
            "total_tokens": len(str(prompt).split()) + n,
        }
        if not body.get("stream"):
            await asyncio.sleep(state.first_token_delay_s + n * state.token_delay_s)
            text = " ".join(f"{state.name}{i}" for i in range(n))
            if "messages" in body:
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length",
                }
            else:
                choice = {"index": 0, "text": text, "finish_reason": "length"}
            return JSONResponse(
                {
                    "object": "x",
                    "model": body["model"],
                    "served_by": state.name,
                    "choices": [choice],
                    "usage": usage,
                }
            )

        async def events() -> AsyncIterator[bytes]:
            state.active += 1
            done = False
            try:
                await asyncio.sleep(state.first_token_delay_s)
                for i in range(n):
                    finish = "length" if i == n - 1 else None
                    yield f"data: {json.dumps(_chunk(body, f'{state.name}{i} ', finish))}\n\n".encode()
                    await asyncio.sleep(state.token_delay_s)
                if (body.get("stream_options") or {}).get("include_usage"):
                    yield f"data: {json.dumps({'object': 'x', 'choices': [], 'usage': usage})}\n\n".encode()
                yield b"data: [DONE]\n\n"
                done = True
            finally:
                state.active -= 1
                if not done:
                    state.abandoned += 1

        return StreamingResponse(events(), media_type="text/event-stream")

    app.post("/v1/completions")(complete)
    app.post("/v1/chat/completions")(complete)

    @app.post("/search")
    async def search(request: Request) -> Response:
        body = await request.json()
        state.headers.append(dict(request.headers))
        await asyncio.sleep(state.search_delay_s)
        return JSONResponse(
            {
                "passages": [
                    {
                        "text": f"passage about {body['query'][:20]}",
                        "score": 0.9,
                        "source": "notes.md",
                    }
                ],
                "timings": {"embed": 0.0, "search": 0.0, "rerank": 0.0},
            }
        )

    return app


@contextmanager
def gateway_with_standin_stable(probe_interval_s: float = 0.2) -> Iterator[Server]:
    """The real gateway with one stand-in stable engine named ``engine``, like the stack's."""
    with serve(upstream_app(UpstreamState("stable"))) as stable:
        options = GatewayOptions.model_validate(
            {
                "engines": [{"name": "engine", "version": "stable", "url": stable.url}],
                "probe_interval_s": probe_interval_s,
            }
        )
        with serve(create_app(options)) as server:
            yield server


def wait_for(check: Any, what: str, timeout_s: float = 10.0) -> Any:
    return poll_until(check, what, timeout_s=timeout_s, interval_s=0.02)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (text exposition)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, rest = line.partition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(rest.split(" ")[0])
    return total


def now() -> float:
    return time.monotonic()
