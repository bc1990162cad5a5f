"""Engine configuration changes: restart the engine through the runtime with another setting.

``engine-kv-budget`` (a fault: a smaller ``--num-gpu-blocks-override`` is a bad deploy of the
engine's memory budget), ``engine-max-num-seqs`` (an operator change, the tempting "let it
batch more" reaction to a KV incident) and ``engine-cpus`` (confine the engine to its own cores,
as a replica has its own GPU) share the mechanism: stop the ``engine`` service, start a spec
built from the settings with the new value, wait until it serves a completion.

Several such changes can be active at once (one per setting): the engine always runs with the
settings plus the values of every live engine change, so reverting one restores its setting
and keeps the others. A revert waits for the engine to be ready again. Inside ``one_engine_restart`` the changes and
reverts only record their values, and the engine restarts once on the way out: a drill's setup
with two engine settings costs one restart, not two.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from pydantic import Field

from faults.base import (
    Change,
    ChangeCategory,
    FaultError,
    FaultHandle,
    HandleState,
    Params,
    StackContext,
)
from faults.store import HandleStore
from sandbox.components.base import wait_component_ready
from sandbox.runtime.base import ServiceState
from sandbox.settings import CpuList

__all__ = [
    "EngineCpus",
    "EngineKvBudget",
    "EngineMaxNumSeqs",
    "EngineRestart",
    "engine_overrides",
    "one_engine_restart",
    "restart_engine",
    "setting_overrides",
]

# ctx.extras key: the handle ids whose restart waits for the end of a one_engine_restart block.
_DEFERRED = "engine_restart_deferred"


def engine_overrides(ctx: StackContext, exclude: str | None = None) -> dict[str, Any]:
    """Settings the engine must run with because of live engine changes (except ``exclude``)."""
    overrides: dict[str, Any] = {}
    for handle in HandleStore(ctx.faults_dir).live():
        field = handle.undo.get("engine_setting")
        if field and handle.id != exclude and handle.state is not HandleState.REVERTED:
            overrides[field] = handle.params[field]
    return overrides


def _stack_running(ctx: StackContext, engine: str) -> bool:
    return any(
        ctx.runtime.status(name).state is ServiceState.RUNNING
        for name in ctx.runtime.names()
        if name != engine
    )


def restart_engine(
    ctx: StackContext, overrides: dict[str, Any], why: str, *, even_if_unchanged: bool = False
) -> None:
    """Stop the engine service and start it with ``overrides`` on top of the settings; wait until
    ready. An engine already running exactly that is left alone, unless ``even_if_unchanged``
    (a restart that is itself the point)."""
    component = ctx.engine_component
    settings = ctx.settings.model_copy(update=overrides)
    spec = component.spec(settings)
    running = ctx.runtime.status(component.name)
    unchanged = running.state is ServiceState.RUNNING and running.fingerprint == spec.fingerprint()
    if unchanged and not even_if_unchanged:
        # Already what the changes ask for: the stack started it so (a drill's setup).
        ctx.progress(f"{component.name} already runs with {overrides or 'the stack settings'}")
        return
    ctx.progress(f"restarting {component.name} ({why}) with {overrides or 'the stack settings'}")
    ctx.runtime.stop(component.name, ctx.settings.stop_timeout_s)
    ctx.runtime.start(spec)
    took = wait_component_ready(
        component,
        settings,
        ctx.runtime,
        ctx.settings.ready_timeout_s,
        fail=FaultError,
        progress=ctx.progress,
    )
    ctx.progress(f"{component.name} ready after {took:.0f} s")


def setting_overrides(changes: Iterable[tuple[Change, Mapping[str, Any]]]) -> dict[str, Any]:
    """The engine settings that these changes (with their raw params) would restart the engine
    with; changes of other targets add nothing. The stack can then start the engine that way."""
    overrides: dict[str, Any] = {}
    for change, raw in changes:
        if isinstance(change, _EngineSetting):
            overrides[change.setting] = change.parse(raw).model_dump(mode="json")[change.setting]
    return overrides


@contextmanager
def one_engine_restart(ctx: StackContext, why: str) -> Iterator[None]:
    """Engine setting changes applied or reverted inside the block take effect together: the
    engine restarts once on the way out, with every live change (and not at all if none was
    made). Also on an error, so the engine runs what the handles say. Nested blocks join the
    outermost one."""
    if _DEFERRED in ctx.extras:
        yield
        return
    deferred: list[str] = []
    ctx.extras[_DEFERRED] = deferred
    try:
        yield
    finally:
        del ctx.extras[_DEFERRED]
        engine = ctx.engine_component.name
        if deferred and (
            ctx.runtime.status(engine).state is ServiceState.RUNNING or _stack_running(ctx, engine)
        ):
            restart_engine(ctx, engine_overrides(ctx), f"{why}: {', '.join(deferred)}")


def _deferred(ctx: StackContext, handle: FaultHandle) -> bool:
    """True (and noted) when a one_engine_restart block will restart the engine for ``handle``."""
    deferred = ctx.extras.get(_DEFERRED)
    if deferred is None:
        return False
    deferred.append(handle.id)
    return True


def _running_engine(ctx: StackContext, change: str) -> str:
    """The stack engine's service name, or FaultError when it is not running: the engine changes
    restart the engine the stack started, they never start one of their own."""
    engine = ctx.engine_component.name
    if ctx.runtime.status(engine).state is not ServiceState.RUNNING:
        raise FaultError(
            f"{change}: the {engine} service is not running; start the stack first (make up)"
        )
    return engine


class _EngineSetting(Change):
    """Restart the engine with one setting changed (the parameter named like the setting)."""

    setting: ClassVar[str]
    default_ttl_s = 1800.0
    replaces_in_place = True  # apply restarts with the new value whatever the old one was

    def target(self, params: Params) -> str:
        return f"engine:{self.setting}"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        return {
            "engine_setting": self.setting,
            "engine": _running_engine(ctx, self.name),
            "previous": getattr(ctx.settings, self.setting),
            "was_running": True,
        }

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        if _deferred(ctx, handle):
            return
        overrides = {
            **engine_overrides(ctx, exclude=handle.id),
            self.setting: handle.params[self.setting],
        }
        restart_engine(ctx, overrides, f"{self.name} {handle.id}")

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        engine = handle.undo.get("engine", ctx.engine_component.name)
        engine_running = ctx.runtime.status(engine).state is ServiceState.RUNNING
        if not engine_running and not _stack_running(ctx, engine):
            # The stack was taken down (`make down`): the next `make up` starts the engine from
            # the settings, which is the reverted state. Starting one engine alone would leak it.
            # (An engine stopped while the rest runs, e.g. a crash mid-restart, is started again.)
            ctx.runtime.stop(engine, ctx.settings.stop_timeout_s)
            handle.notes.append("stack down at revert: engine left stopped")
            return
        if _deferred(ctx, handle):
            return
        restart_engine(ctx, engine_overrides(ctx, exclude=handle.id), f"revert {handle.id}")


class EngineKvBudgetParams(Params):
    kv_tokens: int = Field(
        ge=1,
        le=100_000_000,
        description="the KV budget in tokens, the same on every backend (rounded up to whole blocks of SANDBOX_KV_BLOCK_SIZE)",
    )


class EngineKvBudget(_EngineSetting):
    name = "engine-kv-budget"
    category = ChangeCategory.FAULT
    setting = "kv_tokens"
    summary = "restart the engine with another KV budget in tokens (--num-gpu-blocks-override)"
    effect = "a small budget: KV usage near 1 under long contexts, preemptions, requests waiting for capacity"
    params_model = EngineKvBudgetParams


class EngineMaxNumSeqsParams(Params):
    max_num_seqs: int = Field(
        ge=1, le=4096, description="--max-num-seqs: sequences the engine batches at once"
    )


class EngineMaxNumSeqs(_EngineSetting):
    name = "engine-max-num-seqs"
    category = ChangeCategory.OPERATOR
    setting = "max_num_seqs"
    summary = (
        "restart the engine with another --max-num-seqs (how many sequences it batches at once)"
    )
    effect = "more sequences compete for the same KV blocks: under a KV shortage, more preemption, not less"
    params_model = EngineMaxNumSeqsParams


class EngineCpusParams(Params):
    engine_cpus: CpuList = Field(description="CPU cores the engine may use: 1, 0-3 or 0,2")


class EngineCpus(_EngineSetting):
    name = "engine-cpus"
    category = ChangeCategory.OPERATOR
    setting = "engine_cpus"
    summary = "restart the engine confined to some CPU cores (its own core stands for its own GPU)"
    effect = (
        "the engine's capacity is its cores' alone: a second replica on another core adds as much again, "
        "and the gateway and load generator no longer take the engine's core"
    )
    params_model = EngineCpusParams


class EngineRestartParams(Params):
    pass


class EngineRestart(Change):
    """Stop and start the stack's engine with the settings it runs with now.

    The reflex of "turn it off and on again": it clears nothing a configuration or the traffic
    causes, and for a minute the stack has one engine fewer. Nothing to undo afterwards.
    """

    name = "engine-restart"
    category = ChangeCategory.OPERATOR
    summary = "restart the stack's (stable) engine with its current settings"
    effect = "about a minute without that engine (its traffic goes elsewhere or fails), then the same behaviour as before"
    params_model = EngineRestartParams

    def target(self, params: Params) -> str:
        return "engine:restart"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        _running_engine(ctx, self.name)
        return {}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        restart_engine(ctx, engine_overrides(ctx), self.name, even_if_unchanged=True)

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        handle.notes.append("a restart has nothing to undo")
