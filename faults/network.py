"""network-latency: a slower path between the gateway and one engine.

Chosen mechanism: a delaying TCP proxy of our own (``faults.delay_proxy``), started through the
runtime as service ``netdelay-<engine>``; the gateway's engine is re-registered through its admin
API to go through the proxy (the proxied entry is added before the direct one is removed, so no
request finds no engine). The engine, its metrics and its own TTFT are untouched: only what the
gateway sees (``upstream.send`` and ``upstream.first_token``, hence the derived ``network``
phase) slows, as with a congested or far-away link.
Undo re-registers the direct URL, removes the proxied entry and stops the proxy.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from faults.base import Change, ChangeCategory, FaultError, FaultHandle, Params, StackContext
from faults.http import HttpStatusError, call
from sandbox.admin_paths import GATEWAY_PATHS
from sandbox.components.base import free_port
from sandbox.components.python_service import PROJECT_IMAGE
from sandbox.runtime.base import ServiceSpec, ServiceState
from sandbox.settings import REPO_ROOT

__all__ = ["NetworkLatency", "NetworkLatencyParams"]

PROXY_READY_TIMEOUT_S = 15.0
# In compose the proxy is a container of the project's image, on the project's network: it
# listens here inside, and the gateway's container reaches it by its service name.
PROXY_CONTAINER_PORT = 9000


class NetworkLatencyParams(Params):
    engine: str = Field(
        "engine", min_length=1, description="the gateway's name for the engine whose path slows"
    )
    delay_s: float = Field(gt=0, le=30, description="added one-way latency per chunk, seconds")
    jitter_s: float = Field(
        0.0, ge=0, le=30, description="uniform +/- jitter on the delay, seconds"
    )


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class NetworkLatency(Change):
    name = "network-latency"
    category = ChangeCategory.FAULT
    summary = "route the gateway's traffic to one engine through a delaying TCP proxy (latency, not bandwidth)"
    effect = (
        "gateway network and upstream TTFT rise; vLLM's own queue, prefill and TTFT stay normal"
    )
    params_model = NetworkLatencyParams

    def target(self, params: Params) -> str:
        assert isinstance(params, NetworkLatencyParams)
        return f"network:{params.engine}"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        assert isinstance(params, NetworkLatencyParams)
        state = call(
            ctx, "GET", ctx.endpoints.gateway_url + GATEWAY_PATHS.state, what="gateway state"
        )
        engines = {e["name"]: e for e in state.get("engines", [])}
        if params.engine not in engines:
            raise FaultError(
                f"network-latency: param 'engine': the gateway has no engine {params.engine!r} "
                f"(it has {', '.join(sorted(engines)) or 'none'})"
            )
        original = {k: engines[params.engine][k] for k in ("name", "version", "url")}
        host = ctx.settings.host
        return {
            "original": original,
            "proxy_service": f"netdelay-{params.engine}",
            "proxy_name": f"{params.engine}-netdelay",
            "proxy_port": free_port(host),
        }

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, NetworkLatencyParams)
        undo = handle.undo
        upstream = urlsplit(undo["original"]["url"])
        host, port = ctx.settings.host, int(undo["proxy_port"])
        delays = ("--delay-s", f"{params.delay_s}", "--jitter-s", f"{params.jitter_s}")
        upstream_address = f"{upstream.hostname}:{upstream.port or 80}"
        spec = ServiceSpec(
            name=undo["proxy_service"],
            argv=(
                sys.executable,
                "-m",
                "faults.delay_proxy",
                "--listen-host",
                host,
                "--listen-port",
                str(port),
                "--upstream",
                upstream_address,
                *delays,
            ),
            port=port,
            cwd=REPO_ROOT,
            # Compose: the gateway's engine URL is already a name on the project's network.
            image=PROJECT_IMAGE,
            command=(
                "python",
                "-m",
                "faults.delay_proxy",
                "--listen-host",
                "0.0.0.0",
                "--listen-port",
                str(PROXY_CONTAINER_PORT),
                "--upstream",
                upstream_address,
                *delays,
            ),
            container_port=PROXY_CONTAINER_PORT,
        )
        ctx.runtime.start(spec)
        deadline = time.monotonic() + PROXY_READY_TIMEOUT_S
        while not _listening(host, port):
            if (
                ctx.runtime.status(spec.name).state is not ServiceState.RUNNING
                or time.monotonic() > deadline
            ):
                raise FaultError(
                    f"network-latency: the delay proxy did not start; log:\n{ctx.runtime.log_tail(spec.name)}"
                )
            time.sleep(0.1)
        gateway = ctx.endpoints.gateway_url
        proxied = {
            "name": undo["proxy_name"],
            "version": undo["original"]["version"],
            # Where the gateway reaches the proxy: its container's alias in compose.
            "url": f"http://{spec.name}:{PROXY_CONTAINER_PORT}"
            if ctx.compose_mode
            else f"http://{host}:{port}",
        }
        call(ctx, "POST", gateway + GATEWAY_PATHS.engines, json=proxied, what="gateway engines")
        call(
            ctx,
            "DELETE",
            gateway + GATEWAY_PATHS.engine.format(name=params.engine),
            what="gateway engines",
        )
        ctx.progress(
            f"gateway -> {params.engine} now goes through {proxied['url']} (+{params.delay_s}s)"
        )

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        undo = handle.undo
        gateway = ctx.endpoints.gateway_url
        try:
            try:
                call(
                    ctx,
                    "POST",
                    gateway + GATEWAY_PATHS.engines,
                    json=undo["original"],
                    what="gateway engines",
                )
            except HttpStatusError as exc:
                if exc.status != 400 or "already" not in str(exc):
                    raise
            try:
                call(
                    ctx,
                    "DELETE",
                    gateway + GATEWAY_PATHS.engine.format(name=undo["proxy_name"]),
                    what="gateway engines",
                )
            except HttpStatusError as exc:
                if exc.status != 404:
                    raise
        finally:
            # Whatever the gateway says, the proxy process is ours to stop.
            ctx.runtime.stop(undo["proxy_service"], ctx.settings.stop_timeout_s)
