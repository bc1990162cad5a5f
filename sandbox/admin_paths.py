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

__all__ = [
    "GATEWAY_ADMISSION_PATH",
    "GATEWAY_ENGINES_PATH",
    "GATEWAY_ENGINE_PATH",
    "GATEWAY_RAG_PATH",
    "GATEWAY_SHADOW_PATH",
    "GATEWAY_STATE_PATH",
    "GATEWAY_WEIGHTS_PATH",
    "LOADGEN_STATUS_PATH",
    "LOADGEN_STOP_PATH",
    "LOADGEN_TENANTS_PATH",
    "LOADGEN_TENANT_PATH",
    "RETRIEVER_FAULT_PATH",
]

# -- gateway --
GATEWAY_STATE_PATH = "/admin/state"
GATEWAY_WEIGHTS_PATH = "/admin/weights"
GATEWAY_SHADOW_PATH = "/admin/shadow"
GATEWAY_ADMISSION_PATH = "/admin/admission"
GATEWAY_RAG_PATH = "/admin/rag"
GATEWAY_ENGINES_PATH = "/admin/engines"
GATEWAY_ENGINE_PATH = "/admin/engines/{name}"

# -- retriever --
RETRIEVER_FAULT_PATH = "/admin/fault"

# -- load generator --
LOADGEN_STATUS_PATH = "/control/status"
LOADGEN_TENANTS_PATH = "/control/tenants"
LOADGEN_TENANT_PATH = "/control/tenants/{tenant}"
LOADGEN_STOP_PATH = "/control/stop"
