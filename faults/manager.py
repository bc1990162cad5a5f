"""The life cycle of every change: inject, revert, expire, reset (see the package docstring)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from faults.base import (
    FaultConflict,
    FaultError,
    FaultHandle,
    HandleState,
    StackContext,
    TargetGone,
)
from faults.engine import one_engine_restart
from faults.registry import get_change
from faults.store import HandleStore
from sandbox import timeline

__all__ = ["active_handles", "inject", "reap_expired", "reset", "revert"]


def _store(ctx: StackContext) -> HandleStore:
    return HandleStore(ctx.faults_dir)


def active_handles(ctx: StackContext) -> list[FaultHandle]:
    """Every change not yet reverted (active, being injected, or whose revert failed)."""
    return _store(ctx).live()


def _new_id(name: str) -> str:
    return f"{name}-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"


def inject(
    ctx: StackContext,
    name: str,
    raw_params: Mapping[str, Any],
    ttl_s: float | None = None,
    source: str = "cli",
    replaces: Sequence[str] = (),
) -> FaultHandle:
    """Make a change and return its handle. The same change with the same parameters already
    active returns that handle; another change on the same target is a ``FaultConflict``,
    unless its id is in ``replaces``: a change that ``replaces_in_place`` then goes from the old
    value to the new in one step (the old handle is archived as replaced, never undone)."""
    change = get_change(name)
    params = change.parse(raw_params)
    if change.compose_refusal and ctx.compose_mode:
        raise FaultError(
            f"{name} does not work in compose mode: {change.compose_refusal}. "
            "Run it (and incidents that use it) in local mode: SANDBOX_MODE=local"
        )
    ttl = change.default_ttl_s if ttl_s is None else float(ttl_s)
    if ttl <= 0:
        raise FaultError(f"{name}: ttl_s must be above 0 (got {ttl_s})")
    reap_expired(ctx)
    store = _store(ctx)
    target = change.target(params)
    dumped = params.model_dump(mode="json")
    replaced: list[FaultHandle] = []
    with store.locked():
        for existing in store.live():
            if existing.target != target:
                continue
            if (
                existing.change == name
                and existing.params == dumped
                and existing.state is HandleState.ACTIVE
            ):
                ctx.progress(f"{name} is already active as {existing.id}; nothing to do")
                return existing
            if existing.id in replaces:
                if not (change.replaces_in_place and existing.change == name):
                    raise FaultError(
                        f"{name} cannot replace {existing.id} ({existing.change}) in place; "
                        f"revert it first: sandbox faults revert {existing.id}"
                    )
                if existing.state is HandleState.ACTIVE:
                    replaced.append(existing)
                    continue
            raise FaultConflict(
                f"{name}: {target} is already changed by {existing.id} ({existing.change}, {existing.state.value}); "
                f"revert it first: sandbox faults revert {existing.id}"
            )
        undo = change.prepare(ctx, params)
        now = time.time()
        handle = FaultHandle(
            id=_new_id(name),
            change=name,
            category=change.category,
            target=target,
            params=dumped,
            undo=undo,
            source=source,
            created_at=now,
            ttl_s=ttl,
            expires_at=now + ttl,
            notes=[f"injected by pid {os.getpid()}"],
        )
        # The handle is on disk before anything changes: a crash from here on leaves it to revert.
        store.write(handle)
        for old in replaced:
            # Archived before apply so that apply sees only the new value; if apply fails, the
            # new handle's undo restores the settings without either.
            old.state = HandleState.REVERTED
            old.reverted_at = now
            old.notes.append(f"replaced in place by {handle.id}")
            store.archive(old)
    for old in replaced:
        timeline.record(
            ctx.settings.run_dir,
            "fault.revert",
            {"id": old.id, "change": old.change, "reason": f"replaced in place by {handle.id}"},
        )
        ctx.progress(f"replacing {old.id} in place by {handle.id}")
    try:
        change.apply(ctx, params, handle)
    except BaseException as exc:
        ctx.progress(f"{name}: inject failed ({exc}); undoing what was done")
        try:
            revert(ctx, handle.id, reason=f"inject failed: {exc}")
        except FaultError as undo_exc:
            ctx.progress(f"{name}: undo failed too ({undo_exc}); `sandbox reset` will retry")
        if isinstance(exc, FaultError):
            raise
        if isinstance(exc, Exception):
            raise FaultError(f"{name}: inject failed: {type(exc).__name__}: {exc}") from exc
        raise
    with store.locked():
        current = store.read(handle.id)
        if current is None or current.state is not HandleState.INJECTING:
            # Reverted while we were applying (a reset from another process): undo our late change.
            reverted_meanwhile = True
        else:
            reverted_meanwhile = False
            handle.state = HandleState.ACTIVE
            store.write(handle)
    if reverted_meanwhile:
        change.undo(ctx, handle)
        raise FaultError(f"{name}: reverted by another process while it was being injected")
    timeline.record(
        ctx.settings.run_dir,
        "fault.inject",
        {
            "id": handle.id,
            "change": name,
            "category": handle.category.value,
            "params": dumped,
            "ttl_s": ttl,
            "source": source,
        },
    )
    return handle


def revert(ctx: StackContext, handle_id: str, reason: str = "requested") -> FaultHandle:
    """Undo a change. Reverting a reverted handle does nothing; a target that is no longer
    running counts as reverted (its in-memory change died with it), noted on the handle."""
    store = _store(ctx)
    with store.locked():
        handle = store.read(handle_id)
        if handle is None:
            raise FaultError(
                f"no fault handle {handle_id!r} in {store.dir}; `sandbox faults revert` lists them"
            )
        if handle.state is HandleState.REVERTED:
            return handle
        change = get_change(handle.change)
        handle.state = HandleState.REVERTING
        store.write(handle)
        try:
            change.undo(ctx, handle)
        except TargetGone as exc:
            handle.notes.append(f"target gone at revert: {exc}")
        except Exception as exc:
            handle.state = HandleState.FAILED
            handle.notes.append(f"revert failed at {time.strftime('%H:%M:%S')}: {exc}")
            store.write(handle)
            raise FaultError(
                f"{handle.id}: revert failed: {exc}; retry with `sandbox reset`"
            ) from exc
        handle.state = HandleState.REVERTED
        handle.reverted_at = time.time()
        handle.notes.append(f"reverted ({reason})")
        store.archive(handle)
    timeline.record(
        ctx.settings.run_dir,
        "fault.revert",
        {"id": handle.id, "change": handle.change, "reason": reason},
    )
    ctx.progress(f"reverted {handle.id} ({reason})")
    return handle


def reap_expired(ctx: StackContext, now: float | None = None) -> list[FaultHandle]:
    """Revert every handle whose TTL has passed (also ones a crashed injector left)."""
    reverted = []
    for handle in _store(ctx).live():
        if handle.expired(now):
            try:
                reverted.append(revert(ctx, handle.id, reason="ttl expired"))
            except FaultError as exc:
                ctx.progress(f"TTL revert of {handle.id} failed: {exc}")
    return reverted


def reset(ctx: StackContext) -> tuple[list[FaultHandle], list[str]]:
    """Revert every live handle, newest first (the reverse of the order they were made).
    Returns what was reverted and the errors of what could not be."""
    reverted, errors = [], []
    try:
        with one_engine_restart(ctx, "reset"):
            for handle in reversed(_store(ctx).live()):
                try:
                    reverted.append(revert(ctx, handle.id, reason="reset"))
                except FaultError as exc:
                    errors.append(str(exc))
    except FaultError as exc:
        errors.append(f"restarting the engine after the reverts: {exc}")
    return reverted, errors
