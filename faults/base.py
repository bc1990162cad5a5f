"""The common interface of every change: parameters, handle, errors, and the stack it acts on."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from faults.endpoints import Endpoints
from sandbox.components.base import Component
from sandbox.exceptions import ConfigError, SandboxError
from sandbox.runtime.base import Runtime
from sandbox.settings import Settings
from sandbox.validation import field_problems
from sandbox.waiting import Progress

__all__ = [
    "Change",
    "ChangeCategory",
    "FaultConflict",
    "FaultError",
    "FaultHandle",
    "HandleState",
    "ParamError",
    "Params",
    "StackContext",
    "TargetGone",
]


class FaultError(SandboxError):
    """A change could not be injected or reverted; the message says which, why, and what to do."""


class ParamError(FaultError, ConfigError):
    """Bad parameters. ``problems`` pairs each field with what is wrong with it."""

    def __init__(self, change: str, problems: list[tuple[str, str]]) -> None:
        self.change = change
        self.problems = problems
        detail = "; ".join(f"param {name!r}: {message}" for name, message in problems)
        super().__init__(f"{change}: {detail}")

    @classmethod
    def from_validation(cls, change: str, exc: ValidationError) -> ParamError:
        return cls(change, field_problems(exc, default="params"))


class FaultConflict(FaultError):
    """Another active change already acts on the same target with other parameters."""


class TargetGone(FaultError):
    """The process a change acted on is not running, so the change died with it: nothing to undo."""


class ChangeCategory(str, Enum):
    FAULT = "fault"  # breaks something, as a real incident would
    OPERATOR = "operator"  # what a responder does: a mitigation, or a tempting mistake


class HandleState(str, Enum):
    INJECTING = "injecting"  # handle written, change under way (or the injector crashed here)
    ACTIVE = "active"
    REVERTING = "reverting"
    REVERTED = "reverted"
    FAILED = "failed"  # a revert failed; the handle stays so `sandbox reset` retries it


class Params(BaseModel):
    """Base of every change's parameters: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self) -> dict[str, Any]:
        """The fields set, for a change whose ``None`` fields mean "keep the current value"."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FaultHandle(BaseModel):
    """Everything needed to undo a change, persisted before the change is made."""

    model_config = ConfigDict(extra="forbid")

    id: str
    change: str
    category: ChangeCategory
    target: str = Field(description="what it acts on; two active changes never share one")
    params: dict[str, Any]
    undo: dict[str, Any] = Field(
        default_factory=dict, description="state captured before the change"
    )
    state: HandleState = HandleState.INJECTING
    source: str = Field("cli", description="who made it: cli, drill:<incident>, ...")
    created_at: float
    ttl_s: float
    expires_at: float
    reverted_at: float | None = None
    notes: list[str] = Field(default_factory=list)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    @property
    def live(self) -> bool:
        return self.state is not HandleState.REVERTED


@dataclass
class StackContext:
    """The running stack as changes see it: settings, the runtime, and admin endpoints.

    ``engine_component`` builds the engine's spec and readiness check from settings; changes
    that restart the engine use it (tests give a stand-in process here).
    """

    settings: Settings
    runtime: Runtime
    endpoints: Endpoints
    engine_component: Component
    progress: Progress = print
    http_timeout_s: float = 10.0
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: Settings, runtime: Runtime | None = None, progress: Progress = print
    ) -> StackContext:
        from sandbox.deploy.engines import stack_engine_component
        from sandbox.runtime import runtime_for

        return cls(
            settings=settings,
            runtime=runtime or runtime_for(settings),
            endpoints=Endpoints.from_settings(settings),
            engine_component=stack_engine_component(),
            progress=progress,
        )

    @property
    def compose_mode(self) -> bool:
        """The runtime is the compose project's (containers), not local processes."""
        from sandbox.runtime.docker import DockerRuntime

        return isinstance(self.runtime, DockerRuntime)

    @property
    def faults_dir(self) -> Path:
        return self.settings.run_dir / "faults"

    def http(self) -> httpx.Client:
        return httpx.Client(timeout=httpx.Timeout(self.http_timeout_s, connect=2.0))


def _type_name(annotation: Any) -> str:
    """``int | None`` -> ``int``; ``Literal['a', 'b']`` -> ``a|b``: how a CLI user writes the value."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "|".join(str(a) for a in get_args(annotation))
    if origin in (Union, UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is dict:
        return "object"
    return getattr(annotation, "__name__", str(annotation))


class Change(ABC):
    """One kind of change. Subclasses set the class attributes and the three steps.

    ``prepare`` reads (never writes) what ``undo`` will need; the manager stores its result in
    the handle, writes the handle, then calls ``apply``. ``undo`` must be idempotent: it may run
    after a crash at any point of ``apply``, or twice.
    """

    name: ClassVar[str]
    category: ClassVar[ChangeCategory]
    summary: ClassVar[str]  # one line: what it does to the system
    effect: ClassVar[str]  # what a learner will see on the dashboards
    params_model: ClassVar[type[Params]]
    default_ttl_s: ClassVar[float] = 900.0
    # Why it cannot work against the compose project's containers; None: it works in both modes.
    compose_refusal: ClassVar[str | None] = None
    # Whether ``apply`` alone can take the target from another handle's value of this change to
    # its own, so a replacement skips the undo in between (an engine setting: one restart, not two).
    replaces_in_place: ClassVar[bool] = False

    def parse(self, raw: Mapping[str, Any]) -> Params:
        try:
            return self.params_model.model_validate(dict(raw))
        except ValidationError as exc:
            raise ParamError.from_validation(self.name, exc) from None

    @abstractmethod
    def target(self, params: Params) -> str: ...

    @abstractmethod
    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]: ...

    @abstractmethod
    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None: ...

    @abstractmethod
    def undo(self, ctx: StackContext, handle: FaultHandle) -> None: ...

    def describe_params(self) -> list[tuple[str, str, str]]:
        """(name, type and default, description) of each parameter, for `sandbox faults list`."""
        rows = []
        for name, info in self.params_model.model_fields.items():
            kind = _type_name(info.annotation)
            default = (
                "required"
                if info.is_required()
                else "optional"
                if info.default is None
                else f"default {info.default!r}"
            )
            rows.append((name, f"{kind}, {default}", info.description or ""))
        return rows
