"""The base of the sandbox's small standard-library HTTP servers: the autoscaler's ``/metrics``
and ``/state``, the load generator's control API and the drill's alert webhook."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["QuietHandler"]


class QuietHandler(BaseHTTPRequestHandler):
    """Replies with a whole body and its length, and writes no access log (a scrape every few
    seconds is not worth a line; each server logs what matters itself)."""

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, body: Any) -> None:
        self.reply(status, json.dumps(body).encode(), "application/json")

    def log_message(self, format: str, *args: object) -> None:
        pass
