"""The floor under the gateway's CPU: a relay with nothing but the relay in it.

A raw ASGI app on the same server (uvicorn, uvloop, httptools) and the same engine client
(``sandbox.httpstream``) as the gateway, that forwards one POST to one engine and relays the
streamed answer as it comes, one write per read, as the gateway does. No validation, admission,
token counting, routing, spans, metrics or log line. ``bench/gateway_overhead.py --bare`` runs it
in the gateway's place: the gateway's CPU per request minus this one's is what the gateway's own
work costs; this one's is what any relay built this way costs.

Run alone: ``python bench/bare_relay.py --port 8001 --upstream http://127.0.0.1:8000``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.gateway.__main__ import serve
from sandbox.httpstream import StreamClient

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream")],
}


def relay_app(upstream: str):  # type: ignore[no-untyped-def]
    client = StreamClient(connect_timeout_s=5.0, read_timeout_s=120.0)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = await client.post(
            upstream + scope["path"], body, {"content-type": "application/json"}
        )
        try:
            await send(_START)
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await answer.aclose()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the engine's base URL")
    args = parser.parse_args()
    serve(relay_app(args.upstream.rstrip("/")), args.host, args.port)


if __name__ == "__main__":
    main()
