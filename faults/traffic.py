"""traffic-tenant: switch a load-generator tenant on or off, or change its rate or lengths.

Acts on the running load generator through its control API (``faults.endpoints``), so the
traffic shape changes the way a real tenant's would: a new customer starts sending long
contexts, or a batch job doubles its rate. The undo puts back the values it replaced.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from faults.base import Change, ChangeCategory, FaultError, FaultHandle, Params, StackContext
from faults.http import HttpStatusError, call, put_previous
from sandbox.admin_paths import LOADGEN_PATHS

__all__ = ["TrafficTenant", "TrafficTenantParams"]

Length = int | dict[str, Any]
CHANGED_FIELDS = ("enabled", "rate_per_s", "prompt_tokens", "output_tokens")


class TrafficTenantParams(Params):
    tenant: str = Field(min_length=1, description="tenant name in the running load profile")
    enabled: bool | None = Field(None, description="switch the tenant on (true) or off (false)")
    rate_per_s: float | None = Field(
        None, gt=0, le=1000, description="its request rate, per second"
    )
    prompt_tokens: Length | None = Field(
        None,
        description="prompt length in tokens: a number, or a distribution object of the profile format",
    )
    output_tokens: Length | None = Field(
        None, description="output length (max_tokens): a number or a distribution"
    )

    @model_validator(mode="after")
    def _something(self) -> TrafficTenantParams:
        if all(getattr(self, name) is None for name in CHANGED_FIELDS):
            raise ValueError(f"give at least one of {', '.join(CHANGED_FIELDS)}")
        for name in ("prompt_tokens", "output_tokens"):
            value = getattr(self, name)
            if isinstance(value, int) and value < 1:
                raise ValueError(f"{name} must be at least 1 token")
        return self

    def changes(self) -> dict[str, Any]:
        return {
            name: getattr(self, name) for name in CHANGED_FIELDS if getattr(self, name) is not None
        }


class TrafficTenant(Change):
    name = "traffic-tenant"
    category = ChangeCategory.FAULT
    summary = "switch a load tenant on/off or change its rate or prompt/output lengths (load generator control API)"
    effect = "a traffic shift: more tokens per request or more requests; the engine's KV cache and queue feel it"
    params_model = TrafficTenantParams

    def _url(self, ctx: StackContext, tenant: str) -> str:
        return ctx.endpoints.loadgen_url + LOADGEN_PATHS.tenant.format(tenant=tenant)

    def target(self, params: Params) -> str:
        assert isinstance(params, TrafficTenantParams)
        return f"loadgen-tenant:{params.tenant}"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        assert isinstance(params, TrafficTenantParams)
        try:
            current = call(ctx, "GET", self._url(ctx, params.tenant), what="load generator tenant")
        except HttpStatusError as exc:
            if exc.status == 404:
                raise FaultError(
                    f"traffic-tenant: param 'tenant': {params.tenant!r} is not in the running profile"
                ) from exc
            raise
        if not isinstance(current, dict):
            raise FaultError(
                f"traffic-tenant: the load generator answered {current!r}, not a tenant object"
            )
        return {"previous": {name: current.get(name) for name in params.changes()}}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, TrafficTenantParams)
        call(
            ctx,
            "PUT",
            self._url(ctx, params.tenant),
            json=params.changes(),
            what="load generator tenant",
        )

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        put_previous(
            ctx, self._url(ctx, handle.params["tenant"]), handle, what="load generator tenant"
        )
