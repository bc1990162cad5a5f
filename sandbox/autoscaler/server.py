"""The autoscaler's HTTP endpoints: ``/metrics`` (Prometheus), ``/state`` (JSON), ``/health``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sandbox.http_handler import QuietHandler

__all__ = ["serve_http"]


def serve_http(
    host: str, port: int, registry: CollectorRegistry, state: Callable[[], dict[str, Any]]
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; ``shutdown()`` the returned server to stop."""
    lock = threading.Lock()  # /state reads the deployment files; one reader at a time is plenty

    class Handler(QuietHandler):  # the decisions are the log
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self.reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/health":
                self.reply(200, b"ok\n", "text/plain")
            elif self.path == "/state":
                with lock:
                    body = json.dumps(state(), default=str, indent=1).encode()
                self.reply(200, body, "application/json")
            else:
                self.reply(404, b"not found: /metrics, /state, /health\n", "text/plain")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="autoscaler-http", daemon=True).start()
    return server
