"""A fast OpenAI-style streaming endpoint with no model: for calibrating the generator.

A real HTTP/1.1 server (keep-alive, chunked SSE) answering ``POST /v1/completions`` and
``/v1/chat/completions`` with exactly ``max_tokens`` tokens: the first after ``--ttft-ms``, then
one every ``--itl-ms``, and a final ``usage`` chunk. ``bench/loadgen_accuracy.py`` measures the
generator against it (it costs far less CPU per request than the generator itself), and the
unit tests run the runner against it. Test hooks, per request: header ``X-Stream-Status: 503``
answers that status; ``X-Stream-Delay-Ms: N`` adds N ms before the first token.

    python -m sandbox.loadgen.streamserver --port P [--ttft-ms 5] [--itl-ms 1] [--count-tokens]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Callable

from sandbox.openai_errors import error_json

__all__ = ["StreamServer", "main"]


class StreamServer:
    """``await serve()`` in a loop; ``port`` is known after ``start``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ttft_ms: float = 5.0,
        itl_ms: float = 1.0,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.ttft_s, self.itl_s = ttft_ms / 1000, itl_ms / 1000
        self.count_tokens = count_tokens
        self.requests = 0
        # The last 100 requests' headers and bodies (tests read them).
        self.headers_seen: list[dict[str, str]] = []
        self.bodies_seen: list[dict[str, object]] = []
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and end every open (keep-alive) connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                await self._answer(method, path, headers, body, writer)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            writer.close()

    async def _answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        if method == "GET" and path == "/health":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            return
        if method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        self.requests += 1
        self.headers_seen = [*self.headers_seen[-99:], headers]
        status = int(headers.get("x-stream-status", "200"))
        if status != 200:
            payload = error_json(status, "asked for by X-Stream-Status", None, "requested_status")
            writer.write(
                f"HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            return
        request = json.loads(body)
        self.bodies_seen = [*self.bodies_seen[-99:], request]
        n = int(request.get("max_tokens", 16))
        chat = path.endswith("chat/completions")
        prompt = request["messages"][-1]["content"] if chat else request["prompt"]
        prompt_tokens = self.count_tokens(prompt) if self.count_tokens else len(prompt.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n,
            "total_tokens": prompt_tokens + n,
        }
        delay = self.ttft_s + float(headers.get("x-stream-delay-ms", "0")) / 1000
        if not request.get("stream"):
            await asyncio.sleep(delay + self.itl_s * (n - 1))
            choice = {
                "index": 0,
                "finish_reason": "length",
                **(
                    {"message": {"role": "assistant", "content": "tok " * n}}
                    if chat
                    else {"text": "tok " * n}
                ),
            }
            payload = json.dumps(
                {"object": "text_completion", "choices": [choice], "usage": usage}
            ).encode()
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        await asyncio.sleep(delay)
        for i in range(n):
            if i:
                await asyncio.sleep(self.itl_s)
            finish = "length" if i == n - 1 else None
            choice = {
                "index": 0,
                "finish_reason": finish,
                **({"delta": {"content": " tok"}} if chat else {"text": " tok"}),
            }
            _chunk(writer, {"object": "text_completion", "choices": [choice]})
            await writer.drain()
        _chunk(writer, {"object": "text_completion", "choices": [], "usage": usage})
        event = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
        await writer.drain()


def _chunk(writer: asyncio.StreamWriter, data: dict[str, object]) -> None:
    event = b"data: " + json.dumps(data).encode() + b"\n\n"
    writer.write(b"%x\r\n%s\r\n" % (len(event), event))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=5.0)
    parser.add_argument("--itl-ms", type=float, default=1.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument(
        "--count-tokens",
        action="store_true",
        help="count prompt tokens with the engine's tokenizer (slower)",
    )
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    count = None
    if args.count_tokens:
        from sandbox.loadgen.prompts import PromptBuilder

        count = PromptBuilder().count

    async def run() -> None:
        server = StreamServer(args.host, args.port, args.ttft_ms, args.itl_ms, count)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(
            json.dumps({"event": "listening", "port": server.port, "time": time.time()}), flush=True
        )
        await stop.wait()
        await server.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:  # pragma: no cover
        asyncio.run(run())


if __name__ == "__main__":
    main()
