"""The real services the faults call, run in this process on free ports, plus a stand-in engine
process script.

The gateway and the retriever are their real FastAPI apps under uvicorn (the retriever without
its model: the fault hook needs none); the load generator is its real control server on a real
``Runner`` that never starts traffic. A test reads their state through their own GET endpoints,
so a fault that speaks a path or body the service does not understand fails here.

A ``Witness`` sees every state-changing call as the service receives it and notes whether a
fault handle was already on disk at that moment (the "handle before change" rule).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.admin_paths import GATEWAY_PATHS, LOADGEN_PATHS, RETRIEVER_PATHS
from sandbox.gateway.app import create_app as create_gateway
from sandbox.gateway.config import GatewayOptions
from sandbox.loadgen.control import ControlServer
from sandbox.loadgen.profile import Tenant, TenantUpdate, parse_profile
from sandbox.loadgen.prompts import PromptBuilder
from sandbox.loadgen.runner import Runner, RunOptions
from sandbox.retriever.app import create_app as create_retriever
from sandbox.retriever.config import RetrieverOptions
from tests.support import free_port
from tests.unit.gateway_helpers import Server, serve

__all__ = ["LONG_CONTEXT", "STANDIN_ENGINE", "Call", "Targets", "Witness", "running_targets"]

# A held PUT waits at most this long: a test that forgets to release it still ends.
HOLD_TIMEOUT_S = 60.0

# The load generator's tenant the traffic tests change, as its profile starts it.
LONG_CONTEXT = {"enabled": False, "rate_per_s": 0.5, "prompt_tokens": 200, "output_tokens": 64}


@dataclass(frozen=True)
class Call:
    what: str  # "DELETE /admin/fault?phase=search"; the load generator's: "update_tenant <name>"
    handle_on_disk: bool


@dataclass
class Witness:
    """Records the state-changing calls the services receive, in order, across all of them."""

    faults_dir: Path
    calls: list[Call] = field(default_factory=list)
    # When set to an unset Event, a PUT waits here before the app sees it (until it is set), so
    # a test can kill the caller in the middle of its call.
    hold: threading.Event | None = None

    def record(self, what: str) -> None:
        self.calls.append(Call(what, any(self.faults_dir.glob("*.json"))))

    def release(self) -> None:
        if self.hold is not None:
            self.hold.set()

    def watch(self, app: ASGIApp) -> ASGIApp:
        """``app`` behind a plain ASGI middleware that records every non-GET request."""

        async def watched(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] != "GET":
                self.record(_request_line(scope))
                hold = self.hold
                if hold is not None and scope["method"] == "PUT":
                    receive = await _buffered(receive)
                    # Off the event loop: the service keeps answering other calls meanwhile.
                    await asyncio.to_thread(hold.wait, HOLD_TIMEOUT_S)
            await app(scope, receive, send)

        return watched


def _request_line(scope: Scope) -> str:
    """``DELETE /admin/fault?phase=search``: the query too, since it can say what changes."""
    query = scope["query_string"].decode()
    return f"{scope['method']} {scope['path']}" + (f"?{query}" if query else "")


async def _buffered(receive: Receive) -> Receive:
    """The request body read now and replayed later: a held call still lands after its caller
    died (uvicorn drops the unread body of a closed connection), the worst case for a reset."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


class WatchedRunner(Runner):
    """The real runner; its tenant changes are recorded as they arrive (its control API is an
    ``http.server``, not ASGI, so the hook sits where the change is made)."""

    witness: Witness

    def update_tenant(self, name: str, update: TenantUpdate) -> Tenant:
        self.witness.record(f"update_tenant {name}")
        return super().update_tenant(name, update)


@dataclass
class Targets:
    gateway: Server
    retriever: Server
    loadgen: ControlServer
    engine_port: int  # the gateway's engine `engine` is expected here (nothing listens yet)
    witness: Witness

    @property
    def calls(self) -> list[Call]:
        return self.witness.calls

    def retriever_faults(self) -> dict[str, dict[str, Any]]:
        return dict(_get(self.retriever.url + RETRIEVER_PATHS.fault)["faults"])

    def set_retriever_fault(self, body: dict[str, Any]) -> None:
        """A fault set by hand (as `sandbox retriever fault` does), through the real hook."""
        response = _client().put(self.retriever.url + RETRIEVER_PATHS.fault, json=body)
        response.raise_for_status()

    def gateway_state(self) -> dict[str, Any]:
        return _get(self.gateway.url + GATEWAY_PATHS.state)

    def gateway_engines(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.gateway_state()["engines"]}

    def tenant(self, name: str) -> dict[str, Any]:
        return _get(self.loadgen.url + LOADGEN_PATHS.tenant.format(tenant=name))


@cache
def _client() -> httpx.Client:
    # One client for every test: a new one loads the CA bundle, a sixth of a second each time.
    return httpx.Client(timeout=5)


def _get(url: str) -> dict[str, Any]:
    response = _client().get(url)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@cache
def _prompts() -> PromptBuilder:
    # The runner builds prompts only when it sends; one tokenizer load serves every test.
    return PromptBuilder()


def _runner(witness: Witness) -> WatchedRunner:
    profile = parse_profile(
        {"name": "faults-test", "tenants": {"long_context": LONG_CONTEXT}}, "fault_targets"
    )
    # Never run: the control API reads and changes tenants without a schedule.
    runner = WatchedRunner(profile, RunOptions(target="http://127.0.0.1:9"), prompts=_prompts())
    runner.witness = witness
    return runner


def _gateway(engine_port: int) -> FastAPI:
    """The real gateway with one engine, `engine`, where the stand-in engine will listen."""
    options = GatewayOptions.model_validate(
        {
            "engines": [
                {"name": "engine", "version": "stable", "url": f"http://127.0.0.1:{engine_port}"}
            ]
        }
    )
    return create_gateway(options)


@contextmanager
def running_targets(faults_dir: Path) -> Iterator[Targets]:
    witness = Witness(faults_dir)
    engine_port = free_port()
    retriever = create_retriever(RetrieverOptions(otlp_endpoint="none"), start=False)
    with ExitStack() as stack:
        gateway = stack.enter_context(serve(witness.watch(_gateway(engine_port))))
        retriever_server = stack.enter_context(serve(witness.watch(retriever)))
        loadgen = ControlServer(_runner(witness), port=0)
        stack.callback(loadgen.close)
        # Both uvicorn servers wind down while the control server waits out its poll interval
        # (half a second), instead of one after the other.
        stack.callback(_ask_to_exit, gateway, retriever_server)
        # A held PUT must not outlive the test: release it before the servers stop.
        stack.callback(witness.release)
        yield Targets(gateway, retriever_server, loadgen, engine_port, witness)


def _ask_to_exit(*servers: Server) -> None:
    for server in servers:
        server.server.should_exit = True


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
