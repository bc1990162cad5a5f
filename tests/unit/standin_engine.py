"""A stand-in for a vLLM server in unit tests of deployments: a real process and a real HTTP
server, answering /health, /v1/completions and /metrics like vLLM, started in a second.

    python tests/unit/standin_engine.py --port P [--ready-after S] [--never-ready] [--crash]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["main"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--ready-after", type=float, default=0.0, help="/health answers 503 until then"
    )
    parser.add_argument("--never-ready", action="store_true", help="listen, but /health always 503")
    parser.add_argument("--crash", action="store_true", help="exit 3 at once, like a bad flag")
    args = parser.parse_args()
    if args.crash:
        print("error: unrecognized arguments: --no-such-vllm-flag", flush=True)
        return 3
    ready_at = time.monotonic() + args.ready_after

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: str, kind: str = "application/json") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _ready(self) -> bool:
            return not args.never_ready and time.monotonic() >= ready_at

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200 if self._ready() else 503, "")
            elif self.path == "/metrics":
                self._send(
                    200,
                    'vllm:num_requests_running{model_name="tiny"} 0.0\n'
                    'vllm:num_requests_waiting{model_name="tiny"} 0.0\n',
                    "text/plain",
                )
            else:
                self._send(404, "{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if not self._ready():
                self._send(503, json.dumps({"error": "loading"}))
                return
            body = {
                "id": "cmpl-1",
                "object": "text_completion",
                "model": "tiny",
                "choices": [{"index": 0, "text": " ok", "finish_reason": "length"}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
            }
            self._send(200, json.dumps(body))

        def log_message(self, format: str, *items: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"standin engine on {args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
