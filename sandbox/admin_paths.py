"""Every admin path of the sandbox's services, in one table: the contract between the apps that
serve them, the clients that call them (the CLI, the deployer, the changes in ``faults/``) and
the tests. A service that moves an endpoint changes one line here.

- gateway (``sandbox/gateway/app.py``): ``GET /admin/state``, ``PUT /admin/weights``,
  ``PUT|DELETE /admin/shadow``, ``PUT /admin/admission``, ``PUT /admin/rag``,
  ``POST /admin/engines``, ``DELETE /admin/engines/{name}``;
- retriever (``sandbox/retriever/app.py``): ``GET|PUT|DELETE /admin/fault``;
- load generator (``sandbox/loadgen/control.py``): ``GET /control/status``,
  ``GET /control/tenants``, ``GET|PUT /control/tenants/{tenant}`` (a partial tenant: ``enabled``,
  ``rate_per_s``, ``prompt_tokens``, ``output_tokens``; an unknown tenant is a 404),
  ``POST /control/stop``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GATEWAY_PATHS", "LOADGEN_PATHS", "RETRIEVER_PATHS"]


@dataclass(frozen=True)
class GatewayPaths:
    state: str = "/admin/state"
    weights: str = "/admin/weights"
    shadow: str = "/admin/shadow"
    admission: str = "/admin/admission"
    rag: str = "/admin/rag"
    engines: str = "/admin/engines"
    engine: str = "/admin/engines/{name}"


@dataclass(frozen=True)
class RetrieverPaths:
    fault: str = "/admin/fault"


@dataclass(frozen=True)
class LoadgenPaths:
    status: str = "/control/status"
    tenants: str = "/control/tenants"
    tenant: str = "/control/tenants/{tenant}"
    stop: str = "/control/stop"


# One instance each: services and clients name a path as ``GATEWAY_PATHS.weights``.
GATEWAY_PATHS = GatewayPaths()
RETRIEVER_PATHS = RetrieverPaths()
LOADGEN_PATHS = LoadgenPaths()
