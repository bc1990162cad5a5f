"""Operator changes at the gateway: admission control and the retrieval timeout.

They are what a responder does during an incident, and they are reverted like faults at the end
of a drill (so the next drill starts from the stack's defaults): the undo puts back the values
read from ``/admin/state`` before the change.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from faults.base import Change, ChangeCategory, FaultHandle, Params, StackContext
from faults.http import call, put_previous
from sandbox.admin_paths import GATEWAY_PATHS

__all__ = [
    "GatewayAdmission",
    "GatewayAdmissionParams",
    "GatewayRagTimeout",
    "GatewayRagTimeoutParams",
]


class GatewayAdmissionParams(Params):
    enabled: bool = Field(True, description="turn admission control on (or off)")
    max_in_flight_tokens: int | None = Field(
        None, ge=1, description="budget of prompt + max_tokens over admitted requests"
    )
    max_sequences: int | None = Field(None, ge=1, description="requests admitted at once")
    max_queue: int | None = Field(
        None, ge=0, description="requests that may wait for room (0 = reject at once)"
    )
    queue_timeout_s: float | None = Field(
        None, gt=0, description="longest wait before a 429, seconds"
    )


class GatewayRagTimeoutParams(Params):
    timeout_s: float = Field(
        gt=0,
        le=300,
        description="the whole retriever call; past it the gateway answers without context",
    )


class _GatewayOptions(Change):
    section: str  # key of /admin/state and the admin path's options
    path: str

    def target(self, params: Params) -> str:
        return f"gateway:{self.section}"

    def _body(self, params: Params) -> dict[str, Any]:
        raise NotImplementedError

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        state = call(
            ctx, "GET", ctx.endpoints.gateway_url + GATEWAY_PATHS.state, what="gateway state"
        )
        current = state.get(self.section, {})
        return {"previous": {k: current.get(k) for k in self._body(params)}}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        call(
            ctx,
            "PUT",
            ctx.endpoints.gateway_url + self.path,
            json=self._body(params),
            what=f"gateway {self.section}",
        )

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        put_previous(
            ctx, ctx.endpoints.gateway_url + self.path, handle, what=f"gateway {self.section}"
        )


class GatewayAdmission(_GatewayOptions):
    name = "gateway-admission"
    category = ChangeCategory.OPERATOR
    section = "admission"
    path = GATEWAY_PATHS.admission
    summary = (
        "turn on or tune the gateway's admission control (in-flight token budget, sequences, queue)"
    )
    effect = (
        "excess work waits at the gateway or gets 429 instead of overflowing the engine's KV cache"
    )
    params_model = GatewayAdmissionParams

    def _body(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, GatewayAdmissionParams)
        return params.given()


class GatewayRagTimeout(_GatewayOptions):
    name = "gateway-rag-timeout"
    category = ChangeCategory.OPERATOR
    section = "rag"
    path = GATEWAY_PATHS.rag
    summary = "set the gateway's retrieval timeout (RAG requests answer without context past it)"
    effect = "a slow retriever costs at most the timeout; fallbacks are counted instead"
    params_model = GatewayRagTimeoutParams

    def _body(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, GatewayRagTimeoutParams)
        return {"timeout_s": params.timeout_s}
