"""Rollout changes: a canary version takes traffic (or a mirror of it) through the deployer.

``canary-deploy`` is the fault of a bad rollout: ``sandbox deploy VERSION --weight N`` done by
someone else, with a version of ``stack/versions.yaml`` whose configuration regresses. Its undo
is ``sandbox rollback``: all traffic to stable, the canary drained and stopped.

A shadow deploy and a live one of the same canary are two targets, so an incident can mirror
the canary first and give it live traffic later (the deployer reuses the running replica and
only moves the weights). Undoing either one rolls the canary back; the second undo finds
nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from faults.base import Change, ChangeCategory, FaultError, FaultHandle, Params, StackContext
from sandbox.deploy import Deployer, DeployError, HttpGatewayRouting, ReplicaState
from sandbox.deploy.rollout import Rollout
from sandbox.deploy.routing import RoutingError
from sandbox.deploy.versions import VersionError

__all__ = ["CanaryDeploy", "CanaryDeployParams", "deployer_for"]


@contextmanager
def deployer_for(ctx: StackContext, what: str) -> Iterator[Deployer]:
    """A deployer on the running stack; its errors become ``FaultError`` naming ``what``."""
    try:
        deployer = Deployer(
            ctx.settings, ctx.runtime, HttpGatewayRouting(ctx.endpoints.gateway_url)
        )
    except VersionError as exc:
        raise FaultError(f"{what}: {exc}") from exc
    with deployer:
        try:
            yield deployer
        except (DeployError, VersionError, RoutingError) as exc:
            raise FaultError(f"{what}: {exc}") from exc


class CanaryDeployParams(Params):
    version: str = Field(
        min_length=1,
        description="a version of stack/versions.yaml (`sandbox deployments --versions`)",
    )
    weight: float = Field(
        ge=0, le=100, description="percent of traffic it takes (or, with shadow, mirrored to it)"
    )
    shadow: bool = Field(
        False,
        description="mirror the requests instead: its answers are discarded, users unaffected",
    )


class CanaryDeploy(Change):
    name = "canary-deploy"
    category = ChangeCategory.FAULT
    summary = "deploy a version as the canary with a share of traffic, or in shadow (sandbox deploy VERSION --weight N)"
    effect = "the canary's own failures and latency show per version; stable's do not move"
    params_model = CanaryDeployParams
    default_ttl_s = 1800.0

    def target(self, params: Params) -> str:
        assert isinstance(params, CanaryDeployParams)
        return "deploy:canary:shadow" if params.shadow else "deploy:canary"

    def prepare(self, ctx: StackContext, params: Params) -> dict[str, Any]:
        assert isinstance(params, CanaryDeployParams)
        with deployer_for(ctx, self.name) as deployer:
            deployer.version(
                params.version
            )  # an unknown version fails here, before anything changes
            others = sorted(
                {
                    r.version
                    for r in deployer.state().active("canary")
                    if r.version != params.version and r.state is not ReplicaState.DRAINING
                }
            )
        if others:
            raise FaultError(
                f"{self.name}: a canary of {', '.join(others)} is already deployed; "
                "roll it back first (sandbox rollback)"
            )
        return {}

    def apply(self, ctx: StackContext, params: Params, handle: FaultHandle) -> None:
        assert isinstance(params, CanaryDeployParams)
        with deployer_for(ctx, self.name) as deployer:
            replica = Rollout(deployer).deploy(
                params.version, params.weight, shadow=params.shadow, progress=ctx.progress
            )
        handle.notes.append(
            f"{replica.name} ready {(replica.ready_at or 0) - replica.created_at:.1f} s after start"
        )

    def undo(self, ctx: StackContext, handle: FaultHandle) -> None:
        with deployer_for(ctx, f"revert {self.name}") as deployer:
            Rollout(deployer).rollback(progress=ctx.progress, reason=f"revert {handle.id}")
