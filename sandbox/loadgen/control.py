"""The generator's own HTTP port: ``/metrics`` for Prometheus and a small control API.

Routes (the paths are the contract in ``faults/endpoints.py``):

- ``GET /metrics``: the generator's metrics (``metrics.py``);
- ``GET /health``: 200 once the run has started, 503 before;
- ``GET /control/status``: the progress snapshot (sent, in flight, errors, TTFT p95, rates);
- ``GET /control/tenants``: every tenant as it runs now;
- ``GET /control/tenants/{tenant}``: one tenant (404 if the profile has no such tenant);
- ``PUT /control/tenants/{tenant}``: a partial tenant (``enabled``, ``rate_per_s``, ``users``,
  ``prompt_tokens``, ``output_tokens``, ``rag_share``); answers the tenant as changed; a bad
  field is a 400 naming it;
- ``POST /control/stop``: end the run (requests in flight are cancelled); the summary is written.

It runs on a thread of its own (``http.server``), so a scrape never waits for the event loop
that keeps the schedule, and the schedule never waits for a scrape.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer

from pydantic import ValidationError

from sandbox.admin_paths import LOADGEN_PATHS
from sandbox.http_handler import QuietHandler
from sandbox.loadgen.profile import TenantUpdate, format_validation_error, tenant_view
from sandbox.loadgen.runner import Runner, UnknownTenant
from sandbox.openai_errors import error_body
from sandbox.telemetry import render_metrics

__all__ = ["ControlServer"]

_TENANT = re.compile("^" + re.escape(LOADGEN_PATHS.tenant).replace(r"\{tenant\}", "([^/]+)") + "$")


class ControlServer:
    def __init__(self, runner: Runner, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = _handler(runner)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="loadgen-control", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(runner: Runner) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _error(
            self, status: int, message: str, param: str | None = None, code: str | None = None
        ) -> None:
            self.reply_json(status, error_body(status, message, param, code))

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                payload, content_type = render_metrics(
                    runner.metrics.registry, self.headers.get("Accept")
                )
                self.reply(200, payload, content_type)
            elif path == "/health":
                if runner.started.is_set():
                    self.reply_json(200, {"status": "running", "profile": runner.profile.name})
                else:
                    self._error(503, "the run has not started yet", None, "not_started")
            elif path == LOADGEN_PATHS.status:
                self.reply_json(200, runner.snapshot())
            elif path == LOADGEN_PATHS.tenants:
                self.reply_json(200, {name: tenant_view(t) for name, t in runner.tenants().items()})
            elif match := _TENANT.match(path):
                try:
                    self.reply_json(200, tenant_view(runner.tenant(match.group(1))))
                except UnknownTenant:
                    self._unknown(match.group(1))
            else:
                self._error(404, f"no route {path}", None, "not_found")

        def do_PUT(self) -> None:
            match = _TENANT.match(self.path.split("?")[0])
            if not match:
                self._error(404, f"no route PUT {self.path}", None, "not_found")
                return
            name = match.group(1)
            try:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"
                )
                update = TenantUpdate.model_validate(body)
            except ValueError as exc:  # JSONDecodeError and ValidationError are ValueErrors
                detail = (
                    format_validation_error(exc, f"tenant {name}")
                    if isinstance(exc, ValidationError)
                    else f"not JSON: {exc}"
                )
                self._error(400, detail, None, "invalid_value")
                return
            try:
                self.reply_json(200, tenant_view(runner.update_tenant(name, update)))
            except UnknownTenant:
                self._unknown(name)

        def do_POST(self) -> None:
            if self.path.split("?")[0] != LOADGEN_PATHS.stop:
                self._error(404, f"no route POST {self.path}", None, "not_found")
                return
            runner.stop(cancel=True, why="control API")
            self.reply_json(200, {"status": "stopping"})

        def _unknown(self, name: str) -> None:
            self._error(
                404,
                f"tenant {name!r} is not in the running profile (tenants: {', '.join(runner.tenants())})",
                "tenant",
                "tenant_not_found",
            )

    return Handler
