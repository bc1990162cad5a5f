"""retriever-latency: extra latency in one retrieval part (embed, search or rerank).

Uses the retriever's own fault hook (``/admin/fault``), so the delay is spent inside that
part's timing and span, exactly where a slow vector store would show. The retriever is also
given the TTL (plus a margin), so even if nobody reverts, the delay clears itself there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from faults.base import Change, ChangeCategory, FaultHandle, Params, StackContext
from faults.http import call
from sandbox.admin_paths import RETRIEVER_PATHS

__all__ = ["RetrieverLatency", "RetrieverLatencyParams"]

# The retriever's own TTL outlives ours by this much, so our revert (not its timer) is the normal path.
RETRIEVER_TTL_MARGIN_S = 60.0

_KIND_FIELDS = {
    "fixed": ("delay_s",),
    "jitter": ("mean_s", "jitter_s"),
    "heavy_tail": ("median_s", "sigma", "alpha", "distribution", "cap_s"),
}
_REQUIRED = {"fixed": ("delay_s",), "jitter": ("mean_s", "jitter_s"), "heavy_tail": ("median_s",)}


class RetrieverLatencyParams(Params):
    phase: Literal["embed", "search", "rerank"] = Field(
        "search", description="which retrieval part slows"
    )
    kind: Literal["fixed", "jitter", "heavy_tail"] = Field(
        "heavy_tail", description="shape of the added delay"
    )
    delay_s: float | None = Field(None, ge=0, le=300, description="fixed: the delay, seconds")
    mean_s: float | None = Field(None, ge=0, le=300, description="jitter: mean delay, seconds")
    jitter_s: float | None = Field(None, ge=0, le=300, description="jitter: +/- spread, seconds")
    median_s: float | None = Field(
        None, gt=0, le=300, description="heavy_tail: median delay, seconds"
    )
    sigma: float | None = Field(
        None, gt=0, le=5, description="heavy_tail lognormal spread (default 1)"
    )
    alpha: float | None = Field(
        None, gt=0, le=10, description="heavy_tail pareto shape (lower = heavier)"
    )
    distribution: Literal["lognormal", "pareto"] | None = Field(
        None, description="heavy_tail distribution"
    )
    cap_s: float | None = Field(
        None, gt=0, le=300, description="heavy_tail: longest single delay, seconds"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> RetrieverLatencyParams:
        missing = [name for name in _REQUIRED[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        allowed = set(_KIND_FIELDS[self.kind])
        stray = [
            name
            for names in _KIND_FIELDS.values()
            for name in names
            if name not in allowed and getattr(self, name) is not None
        ]
        if stray:
            raise ValueError(f"kind {self.kind} does not use {', '.join(sorted(set(stray)))}")
        return self

    def body(self, ttl_s: float) -> dict[str, Any]:
        fields = {
            name: getattr(self, name)
            for name in _KIND_FIELDS[self.kind]
            if getattr(self, name) is not None
        }
        return {"phase": self.phase, "kind": self.kind, "params": fields, "ttl_s": ttl_s}


class RetrieverLatency(Change):
    name = "retriever-latency"
    category = ChangeCategory.FAULT
    summary = (
        "add latency (fixed, jitter or heavy tail) to one retriever part: embed, search or rerank"
    )
    effect = "retrieval phase slows; client TTFT and E2E rise for RAG requests while the engine stays healthy"
    params_model = RetrieverLatencyParams

    def _url(self, ctx: StackContext) -> str:
        return ctx.endpoints.retriever_url + RETRIEVER_PATHS.fault

    def target(self, params: Params) -> str:
        assert isinstance(params, RetrieverLatencyParams)
        return f"retriever:{params.phase}"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        assert isinstance(params, RetrieverLatencyParams)
        body = call(ctx, "GET", self._url(ctx), what="retriever fault hook")
        previous = (body.get("faults") or {}).get(params.phase) if isinstance(body, dict) else None
        keep = None
        if previous:
            # Someone set a fault by hand (`sandbox retriever fault`): put it back on revert.
            keep = {k: previous[k] for k in ("phase", "kind", "params") if k in previous}
        return {"previous": keep}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, RetrieverLatencyParams)
        call(
            ctx,
            "PUT",
            self._url(ctx),
            json=params.body(handle.ttl_s + RETRIEVER_TTL_MARGIN_S),
            what="retriever fault hook",
        )

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        previous = handle.undo.get("previous")
        if previous:
            call(ctx, "PUT", self._url(ctx), json=previous, what="retriever fault hook")
        else:
            call(
                ctx,
                "DELETE",
                self._url(ctx),
                params={"phase": handle.params["phase"]},
                what="retriever fault hook",
            )
