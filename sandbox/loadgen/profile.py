"""Load profiles: tenants, their arrivals and lengths, a shape over time, and the SLO.

A profile is data (YAML), validated here; a mistake fails with a message naming the file and
the field (``tenants.chat.prompt_tokens.uniform.max: ...``). The shipped profiles live in
``sandbox/loadgen/profiles/``; ``load_profile`` takes one of their names or a path.

Format (every field is documented in ``profiles/baseline.yaml``)::

    name: baseline
    model: tiny                      # the served model name sent in each request
    duration_s: 300                  # default run length (the CLI may override)
    slo: {ttft_s: 2.0, tpot_s: 0.25, e2e_s: 30}
    shape: {kind: constant}          # applies to every tenant unless a tenant has its own
    tenants:
      chat:
        rate_per_s: 1.5              # open loop (poisson or uniform arrivals)
        prompt_tokens: {dist: lognormal, median: 180, sigma: 0.35, min: 80, max: 320}
        output_tokens: {dist: uniform, min: 30, max: 80}
        rag_share: 0.0               # share of requests marked for retrieval (X-Sandbox-RAG: 1)
        stream: true
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.exceptions import ConfigError
from sandbox.loadgen.arrivals import ArrivalKind
from sandbox.loadgen.distributions import Length, length_to_data
from sandbox.loadgen.shapes import Constant, Shape
from sandbox.loadgen.shapes import _Shape as _ShapeBase
from sandbox.slos import load_slos
from sandbox.tenants import PROFILES_DIR
from sandbox.validation import field_path

__all__ = [
    "PROFILES_DIR",
    "SLO",
    "Profile",
    "ProfileError",
    "Tenant",
    "TenantUpdate",
    "format_validation_error",
    "load_profile",
    "parse_profile",
    "profile_names",
    "scale_rates",
    "tenant_view",
]

TENANT_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class ProfileError(ConfigError):
    """A profile cannot be used; the message names the file and the field to fix."""


class SLO(BaseModel):
    """What a good request is; goodput counts the requests that meet every bound given. The
    bounds default to the sandbox's SLOs (``stack/slos.yaml``); a profile of long answers may
    set its own ``e2e_s``, and ``null`` drops a bound."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float | None = Field(
        default_factory=lambda: load_slos().ttft_s, gt=0, description="time to first token, at most"
    )
    tpot_s: float | None = Field(
        default_factory=lambda: load_slos().tpot_s,
        gt=0,
        description="mean time per output token after the first, at most",
    )
    e2e_s: float | None = Field(
        default_factory=lambda: load_slos().e2e_s, gt=0, description="end-to-end latency, at most"
    )

    def met(self, ttft_s: float | None, tpot_s: float | None, e2e_s: float) -> bool:
        if self.ttft_s is not None and (ttft_s is None or ttft_s > self.ttft_s):
            return False
        if self.tpot_s is not None and tpot_s is not None and tpot_s > self.tpot_s:
            return False
        return not (self.e2e_s is not None and e2e_s > self.e2e_s)


class Tenant(BaseModel):
    """One source of traffic: its arrival process, its lengths, what its requests look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    arrival: ArrivalKind = ArrivalKind.POISSON
    rate_per_s: float = Field(
        1.0, ge=0, le=10000, description="base rate of an open-loop tenant, requests per second"
    )
    burst: int = Field(
        1,
        ge=1,
        le=64,
        description="requests sent together at each arrival, or by a closed-loop user at a time "
        "(a job that submits its documents in batches)",
    )
    users: int = Field(1, ge=1, le=4096, description="concurrent users of a closed-loop tenant")
    think_time_s: float = Field(
        0.0, ge=0, description="pause of a closed-loop user between its requests"
    )
    prompt_tokens: Length
    output_tokens: Length
    rag_share: float = Field(
        0.0, ge=0, le=1, description="share of requests that ask for retrieval"
    )
    stream: bool = True
    endpoint: Literal["completions", "chat"] = "completions"
    shape: Shape | None = Field(None, description="this tenant's own shape (else the profile's)")


class TenantUpdate(BaseModel):
    """A change to a running tenant (the control API's PUT body): only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    rate_per_s: float | None = Field(None, ge=0, le=10000)
    users: int | None = Field(None, ge=1, le=4096)
    prompt_tokens: Length | None = None
    output_tokens: Length | None = None
    rag_share: float | None = Field(None, ge=0, le=1)

    def apply(self, tenant: Tenant) -> Tenant:
        # The values are validated already; model_copy keeps the distribution objects as they are.
        return tenant.model_copy(
            update={
                k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None
            }
        )


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    model: str = Field("tiny", min_length=1, description="model name sent in each request")
    duration_s: float = Field(300.0, gt=0, description="default run length")
    request_timeout_s: float = Field(
        300.0, gt=0, description="a request still running after this is a timeout"
    )
    max_in_flight: int = Field(
        1024, ge=1, description="open-loop safety valve: arrivals beyond it are dropped and counted"
    )
    slo: SLO = SLO()
    shape: Shape = Constant()
    tenants: dict[str, Tenant] = Field(min_length=1)

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, Tenant]) -> dict[str, Tenant]:
        import re

        for name in tenants:
            if not re.match(TENANT_NAME, name):
                raise ValueError(
                    f"tenant name {name!r} must be lower case letters, digits and _ (at most 32), starting with a letter"
                )
        return tenants

    def shape_of(self, tenant: str) -> _ShapeBase:
        return self.tenants[tenant].shape or self.shape


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    """A tenant as the control API shows it (lengths as a number when fixed)."""
    data = tenant.model_dump(mode="json", by_alias=True, exclude={"prompt_tokens", "output_tokens"})
    data["prompt_tokens"] = length_to_data(tenant.prompt_tokens)
    data["output_tokens"] = length_to_data(tenant.output_tokens)
    return data


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line per problem: ``<where>: <field path>: <message> (got <value>)``."""
    lines = []
    for error in exc.errors():
        path = field_path(error)
        got = error.get("input")
        shown = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{where}: {path or '(top level)'}: {error['msg']}{shown}")
    return "\n".join(lines)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ProfileError(f"profile file {path} does not exist")
        return path
    shipped = PROFILES_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise ProfileError(
            f"no profile named {name_or_path!r}: shipped profiles are {', '.join(profile_names())}, or give a path to a .yaml file"
        )
    return shipped


def parse_profile(data: object, where: str) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(
            f"{where}: a profile is a mapping (name, tenants, ...), not {type(data).__name__}"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, where)) from exc


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``baseline``) or a YAML file by path, validated."""
    path = _resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_profile(data, str(path))


def scale_rates(profile: Profile, factor: float) -> Profile:
    """The profile with every open-loop tenant's rate multiplied by ``factor``: the same
    workload relative to an engine ``factor`` times as fast as the one it was sized on.
    Lengths, shapes and closed-loop users stay; a rate set later through the control API is
    taken as given."""
    if factor <= 0:
        raise ProfileError(f"{profile.name}: a rate scale must be above 0 (got {factor:g})")
    if factor == 1.0:
        return profile
    tenants = {
        name: t.model_copy(update={"rate_per_s": t.rate_per_s * factor})
        for name, t in profile.tenants.items()
    }
    return profile.model_copy(update={"tenants": tenants})
