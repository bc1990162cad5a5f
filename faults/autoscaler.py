"""Autoscaler changes: run the autoscaler service for a drill, and change its policy.

``autoscaler-run`` starts ``python -m sandbox.autoscaler`` through the runtime (registered with
Prometheus as job ``autoscaler``) with the replica bounds of the incident; its undo stops the
service, removes every replica it started and puts the options file back as it was.

``autoscaler-policy`` rewrites the options the running service re-reads at its next decision:
the signal and its target, the warm minimum, readiness gating. An incident's setup gives it a
poor policy; the learner's mitigation replaces it. Its undo restores the previous values.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
from pydantic import Field

from faults.base import Change, ChangeCategory, FaultError, FaultHandle, Params, StackContext
from faults.deploy import deployer_for
from sandbox.autoscaler.component import autoscaler_component
from sandbox.autoscaler.options import (
    SIGNALS,
    AutoscalerOptions,
    OptionsError,
    options_path,
    update_options,
)
from sandbox.components.base import free_port, wait_component_ready
from sandbox.deploy.targets import write_job_targets
from sandbox.runtime.base import ServiceState
from sandbox.waiting import NotYet, WaitTimeout, wait_until

__all__ = ["AutoscalerPolicy", "AutoscalerPolicyParams", "AutoscalerRun", "AutoscalerRunParams"]

SERVICE = "autoscaler"
REQUESTER = "autoscaler"  # Replica.requested_by of the replicas the service starts


class AutoscalerRunParams(Params):
    version: str = Field(
        "stable", description="the engine version (stack/versions.yaml) its replicas run"
    )
    max_replicas: int = Field(2, ge=1, le=8, description="ceiling, the stack's engine included")
    interval_s: float = Field(5.0, gt=0, le=60, description="time between decisions")
    ready_timeout_s: float | None = Field(
        None, gt=0, description="a replica not ready by then is failed and removed"
    )
    port: int | None = Field(
        None, ge=1, le=65535, description="its /metrics and /state port (default: a free one)"
    )


class _AutoscalerChange(Change):
    """What both autoscaler changes share: an operator's change to one ``part`` of the autoscaler
    (its target, so the two can be active together), kept for an hour by default."""

    part: ClassVar[str]
    category = ChangeCategory.OPERATOR
    default_ttl_s = 3600.0

    def target(self, params: Params) -> str:
        return f"autoscaler:{self.part}"


class AutoscalerRun(_AutoscalerChange):
    name = "autoscaler-run"
    part = "service"
    compose_refusal = (
        "the autoscaler would run in a container with the host's settings (Prometheus and the "
        "gateway at 127.0.0.1) and no Docker socket to add replicas with"
    )
    summary = "run the autoscaler service: it adds and removes stable engine replicas from a Prometheus signal"
    effect = "replicas start when its signal is over target (each takes an engine's real start-up time) and are drained after"
    params_model = AutoscalerRunParams

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        if ctx.runtime.status(SERVICE).state is ServiceState.RUNNING:
            raise FaultError(
                f"{self.name}: an autoscaler is already running; stop it first (make down, or sandbox reset)"
            )
        path = options_path(ctx.settings.run_dir)
        return {
            "options_file": str(path),
            "previous_options": path.read_text() if path.exists() else None,
        }

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, AutoscalerRunParams)
        options = AutoscalerOptions(
            version=params.version,
            max_replicas=params.max_replicas,
            interval_s=params.interval_s,
            ready_timeout_s=params.ready_timeout_s,
            port=params.port or free_port(ctx.settings.host),
            host=ctx.settings.host,
        )
        component = autoscaler_component(options)
        status = ctx.runtime.start(component.spec(ctx.settings))
        write_job_targets(ctx.settings, "autoscaler", component.scrape(ctx.settings))
        ctx.progress(
            f"started the autoscaler (pid {status.pid}) on port {options.port}, replicas of {params.version}"
        )
        wait_component_ready(component, ctx.settings, ctx.runtime, 30.0, fail=FaultError)

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        ctx.runtime.stop(SERVICE, ctx.settings.stop_timeout_s)
        write_job_targets(ctx.settings, "autoscaler", [])
        with deployer_for(ctx, f"revert {self.name}") as deployer:
            removed = deployer.remove_all(progress=ctx.progress, requested_by=REQUESTER)
        if removed:
            handle.notes.append(f"removed replicas {', '.join(removed)}")
        path = options_path(ctx.settings.run_dir)
        previous = handle.undo.get("previous_options")
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(previous)


class AutoscalerPolicyParams(Params):
    signal: str | None = Field(
        None, description=f"what it scales on: {', '.join(SIGNALS)}, or custom (with query)"
    )
    query: str | None = Field(
        None, description="PromQL for signal custom: a value per ready replica"
    )
    target: float | None = Field(
        None, gt=0, description="the signal's value per replica it aims for"
    )
    min_replicas: int | None = Field(
        None, ge=1, description="the warm minimum, kept whatever the signal"
    )
    max_replicas: int | None = Field(None, ge=1, description="the ceiling")
    readiness_gating: bool | None = Field(
        None, description="false sends traffic to replicas that are still loading"
    )
    scale_up_stabilization_s: float | None = Field(
        None, ge=0, description="scale up to the lowest recommendation of this window"
    )
    scale_down_stabilization_s: float | None = Field(
        None, ge=0, description="scale down to the highest recommendation of this window"
    )
    scale_up_cooldown_s: float | None = Field(
        None, ge=0, description="no scale-up sooner than this after a scale event"
    )
    scale_down_cooldown_s: float | None = Field(
        None, ge=0, description="no scale-down sooner than this after a scale event"
    )


class AutoscalerPolicy(_AutoscalerChange):
    name = "autoscaler-policy"
    part = "policy"
    summary = (
        "change the autoscaler's policy: signal and target, warm minimum, readiness gating, windows"
    )
    effect = "the running autoscaler decides with the new policy from its next decision on"
    params_model = AutoscalerPolicyParams

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        assert isinstance(params, AutoscalerPolicyParams)
        changes = params.given()
        if not changes:
            raise FaultError(f"{self.name}: give at least one field to change")
        path = options_path(ctx.settings.run_dir)
        try:
            before = (
                AutoscalerOptions.model_validate(json.loads(path.read_text()))
                if path.exists()
                else AutoscalerOptions()
            )
            AutoscalerOptions.model_validate({**before.model_dump(), **changes})
        except (OptionsError, ValueError) as exc:
            raise FaultError(f"{self.name}: {path}: {exc}") from exc
        return {"previous": {k: getattr(before, k) for k in changes}}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, AutoscalerPolicyParams)
        self._write(ctx, params.given())

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        previous = handle.undo.get("previous", {})
        if previous and options_path(ctx.settings.run_dir).exists():
            self._write(ctx, previous)

    def _write(self, ctx: StackContext, changes: dict[str, Any]) -> None:
        try:
            _, after = update_options(options_path(ctx.settings.run_dir), **changes)
        except OptionsError as exc:
            raise FaultError(f"{self.name}: {exc}") from exc
        ctx.progress(
            f"autoscaler policy: {changes} (signal {after.signal}, target {after.target:g}, "
            f"min {after.min_replicas}, gating {'on' if after.readiness_gating else 'off'})"
        )
        if ctx.runtime.status(SERVICE).state is not ServiceState.RUNNING:
            return
        # The service re-reads the file at its next decision; wait for it so the change is in force.
        url = ctx.settings.url(json.loads(options_path(ctx.settings.run_dir).read_text())["port"])
        timeout_s = after.interval_s * 3 + 5

        def shown(client: httpx.Client) -> bool | NotYet:
            try:
                live = client.get(f"{url}/state").json()["options"]
            except (httpx.HTTPError, ValueError, KeyError):
                return NotYet("its /state does not answer")
            if all(live.get(k) == v for k, v in changes.items()):
                return True
            return NotYet("it still shows the previous policy")

        with ctx.http() as client:
            try:
                wait_until(lambda: shown(client), "the autoscaler's new policy", timeout_s)
            except WaitTimeout:
                ctx.progress(
                    "the autoscaler has not shown the new policy yet; it applies it at its next decision"
                )
