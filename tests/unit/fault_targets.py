"""Small real HTTP servers standing in for the admin APIs the faults call (gateway, retriever,
load generator), with the same paths and bodies, plus a stand-in engine process script.

Each server keeps its state in memory and records every call, and for every call that changes
state it records whether a fault handle was already on disk (the "handle before change" rule).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import free_port

__all__ = ["STANDIN_ENGINE", "AdminServer", "start_admin_server"]


@dataclass
class AdminServer:
    port: int
    faults_dir: Path
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    retriever_faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)
    admission: dict[str, Any] = field(
        default_factory=lambda: {
            "enabled": False,
            "max_in_flight_tokens": 65536,
            "max_sequences": 64,
            "max_queue": 64,
            "queue_timeout_s": 5.0,
        }
    )
    rag: dict[str, Any] = field(
        default_factory=lambda: {"retriever_url": None, "timeout_s": 2.0, "k": 3}
    )
    calls: list[tuple[str, str, Any, bool]] = field(
        default_factory=list
    )  # method, path, body, handle on disk
    block_puts: threading.Event | None = (
        None  # when set to an unset Event, PUTs hang until it is set
    )
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handles_on_disk(self) -> bool:
        return any(self.faults_dir.glob("*.json"))

    def stop(self) -> None:
        if self.block_puts is not None:
            self.block_puts.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(state: AdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet tests
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            body = self._body()
            if method != "GET":
                state.calls.append((method, path, body, state.handles_on_disk()))
                if state.block_puts is not None and method == "PUT":
                    state.block_puts.wait(60)
            # load generator
            if path.startswith("/control/tenants/"):
                name = path.rsplit("/", 1)[1]
                if name not in state.tenants:
                    return self._reply(404, {"error": {"message": f"no tenant {name}"}})
                if method == "PUT":
                    state.tenants[name].update(body)
                return self._reply(200, state.tenants[name])
            # retriever
            if path == "/admin/fault":
                if method == "PUT":
                    state.retriever_faults[body["phase"]] = body
                    return self._reply(200, {"fault": body})
                if method == "DELETE":
                    phases = query.get("phase") or list(state.retriever_faults)
                    cleared = [p for p in phases if state.retriever_faults.pop(p, None) is not None]
                    return self._reply(200, {"cleared": cleared})
                return self._reply(200, {"faults": state.retriever_faults})
            # gateway
            if path == "/admin/state":
                return self._reply(
                    200,
                    {
                        "engines": list(state.engines.values()),
                        "admission": state.admission,
                        "rag": state.rag,
                    },
                )
            if path == "/admin/admission" and method == "PUT":
                state.admission.update(body)
                return self._reply(200, {})
            if path == "/admin/rag" and method == "PUT":
                state.rag.update(body)
                return self._reply(200, {})
            if path == "/admin/engines" and method == "POST":
                if body["name"] in state.engines:
                    return self._reply(
                        400,
                        {
                            "error": {
                                "message": f"an engine named {body['name']!r} is registered already"
                            }
                        },
                    )
                state.engines[body["name"]] = dict(body)
                return self._reply(200, {})
            if path.startswith("/admin/engines/") and method == "DELETE":
                name = path.rsplit("/", 1)[1]
                if state.engines.pop(name, None) is None:
                    return self._reply(404, {"error": {"message": f"no engine named {name!r}"}})
                return self._reply(200, {})
            return self._reply(404, {"error": {"message": f"no route {method} {path}"}})

        def do_GET(self) -> None:
            self._route("GET")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def start_admin_server(faults_dir: Path) -> AdminServer:
    state = AdminServer(port=free_port(), faults_dir=faults_dir)
    server = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    server.daemon_threads = True
    state.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state


# A stand-in engine: serves GET /health and POST /v1/completions, and GET /argv with its argv,
# so a test can see which KV budget it was started with. Started through the LocalRuntime.
STANDIN_ENGINE = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _ok(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._ok({"argv": sys.argv[1:]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._ok({"choices": [{"text": "x"}]})
HTTPServer(("127.0.0.1", port), H).serve_forever()
"""
