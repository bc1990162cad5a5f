"""Every admin endpoint a change calls, in one place: the contract with the other services.

The paths are constants so that a service that moves an endpoint changes one line here. The
base URLs come from the settings (ports), so tests point them at small servers of their own.

- gateway (``sandbox/gateway/app.py``): ``GET /admin/state``, ``PUT /admin/admission``,
  ``PUT /admin/rag``, ``POST /admin/engines``, ``DELETE /admin/engines/{name}``;
- retriever (``sandbox/retriever/app.py``): ``GET|PUT|DELETE /admin/fault``;
- load generator: ``GET /control/tenants/{tenant}`` returns the tenant as the running profile
  has it (at least the keys a fault changes), ``PUT /control/tenants/{tenant}`` with a partial
  object (``enabled``, ``rate_per_s``, ``prompt_tokens``, ``output_tokens``) changes it and
  answers the new tenant; an unknown tenant is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.settings import Settings

__all__ = [
    "GATEWAY_ADMISSION_PATH",
    "GATEWAY_ENGINES_PATH",
    "GATEWAY_ENGINE_PATH",
    "GATEWAY_RAG_PATH",
    "GATEWAY_STATE_PATH",
    "LOADGEN_TENANT_PATH",
    "RETRIEVER_FAULT_PATH",
    "Endpoints",
]

GATEWAY_STATE_PATH = "/admin/state"
GATEWAY_ADMISSION_PATH = "/admin/admission"
GATEWAY_RAG_PATH = "/admin/rag"
GATEWAY_ENGINES_PATH = "/admin/engines"
GATEWAY_ENGINE_PATH = "/admin/engines/{name}"
RETRIEVER_FAULT_PATH = "/admin/fault"
LOADGEN_TENANT_PATH = "/control/tenants/{tenant}"


@dataclass(frozen=True)
class Endpoints:
    gateway_url: str
    retriever_url: str
    loadgen_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        return cls(
            gateway_url=settings.url(settings.gateway_port),
            retriever_url=settings.url(settings.retriever_port),
            loadgen_url=settings.url(settings.loadgen_port),
        )
