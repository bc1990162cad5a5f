"""The gateway's options: engines, routing, admission limits, RAG, input limits, tenants.

Read once at start-up (command-line flags and/or a JSON file, see ``sandbox.gateway``);
routing weights, shadow and admission limits can then change at run time through ``/admin``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.tenants import known_tenants

__all__ = [
    "AdmissionOptions",
    "EngineOptions",
    "GatewayOptions",
    "RagOptions",
    "ShadowOptions",
    "load_options",
    "parse_engine_flag",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineOptions(_Strict):
    """One engine replica: an OpenAI-compatible vLLM server serving one model version."""

    name: str = Field(min_length=1, description="unique replica name, e.g. engine, engine-canary")
    version: str = Field(min_length=1, description="model version it serves: stable, canary, ...")
    url: str = Field(pattern=r"^https?://", description="base URL without /v1")

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class ShadowOptions(_Strict):
    """Mirror ``share`` of requests to ``version``; the mirrored answer is discarded."""

    version: str
    share: float = Field(ge=0.0, le=1.0)


class AdmissionOptions(_Strict):
    """In-flight limits. Off by default: incidents turn it on to show load shedding."""

    enabled: bool = False
    max_in_flight_tokens: int = Field(
        65536, ge=1, description="budget of prompt + max_tokens over admitted requests"
    )
    max_sequences: int = Field(64, ge=1, description="admitted requests at once")
    max_queue: int = Field(
        64, ge=0, description="requests that may wait for room; 0 = reject at once"
    )
    queue_timeout_s: float = Field(5.0, gt=0, description="longest wait in the queue before a 429")
    retry_after_s: int = Field(1, ge=0, description="the Retry-After header of a 429")


class RagOptions(_Strict):
    retriever_url: str | None = Field(
        None, description="retriever base URL; None = RAG requests fall back"
    )
    # Generous by default, as a gateway that nobody tuned is: a default at the TTFT SLO would
    # cap a slow retriever's damage just above the SLO, and the learner's fix is to set it.
    timeout_s: float = Field(
        5.0, gt=0, description="the whole retriever call, then answer without context"
    )
    k: int = Field(3, ge=1, le=20)
    max_context_tokens: int = Field(512, ge=16, description="passages are cut to this many tokens")


class GatewayOptions(_Strict):
    engines: list[EngineOptions] = Field(default_factory=list)
    weights: dict[str, float] = Field(
        default_factory=dict, description="version -> weight; default 1 for stable"
    )
    shadow: ShadowOptions | None = None
    admission: AdmissionOptions = Field(default_factory=AdmissionOptions)
    rag: RagOptions = Field(default_factory=RagOptions)
    models: list[str] = Field(
        default_factory=lambda: ["tiny"], min_length=1, description="served model names"
    )
    tokenizer_path: Path | None = Field(None, description="tokenizer.json for prompt token counts")
    max_prompt_tokens: int = Field(
        3072, ge=1, description="longer prompts get 400 context_length_exceeded"
    )
    max_tokens_limit: int = Field(4096, ge=1, description="largest max_tokens accepted")
    default_max_tokens: int = Field(16, ge=1, description="max_tokens when a request gives none")
    # Tenants a request may name in X-Sandbox-Tenant (any other counts as "other"): the profiles'.
    tenants: list[str] = Field(default_factory=lambda: list(known_tenants()))
    connect_timeout_s: float = Field(2.0, gt=0)
    upstream_timeout_s: float = Field(
        300.0, gt=0, description="no byte from the engine for this long -> 504"
    )
    probe_interval_s: float = Field(2.0, gt=0, description="how often engines' /health is checked")
    max_shadow_in_flight: int = Field(
        16, ge=1, description="mirrored requests at once; more are skipped"
    )

    @model_validator(mode="after")
    def _check(self) -> GatewayOptions:
        names = [e.name for e in self.engines]
        if len(names) != len(set(names)):
            raise ValueError(f"engine names must be unique, got {names}")
        if not self.weights and self.engines:
            versions = sorted({e.version for e in self.engines})
            self.weights = {
                v: (1.0 if v == "stable" or len(versions) == 1 else 0.0) for v in versions
            }
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must not be negative")
        return self


def parse_engine_flag(value: str, index: int) -> EngineOptions:
    """``version=url`` or ``name:version=url`` (the form of ``--engine``)."""
    if "=" not in value:
        raise ValueError(f"--engine {value!r}: expected version=url or name:version=url")
    left, url = value.split("=", 1)
    name, _, version = left.rpartition(":")
    return EngineOptions(
        name=name or (f"engine-{version}" if index else "engine"), version=version, url=url
    )


def load_options(
    config: Path | None = None, engines: list[str] | None = None, **overrides: object
) -> GatewayOptions:
    """Options from a JSON file (if given and present), ``--engine`` flags and keyword overrides."""
    # JSON as read: GatewayOptions validates it, so its values are Any until then.
    data: dict[str, Any] = {}
    if config is not None and config.exists():
        data = json.loads(config.read_text())
    if engines:
        flagged = [parse_engine_flag(value, i).model_dump() for i, value in enumerate(engines)]
        known = {e["name"] for e in data.get("engines", [])}
        data["engines"] = [
            *data.get("engines", []),
            *(e for e in flagged if e["name"] not in known),
        ]
    data.update({k: v for k, v in overrides.items() if v is not None})
    return GatewayOptions.model_validate(data)
