"""Every change by name. A new fault is a module with a ``Change`` subclass, listed here."""

from __future__ import annotations

from faults.base import Change, FaultError

__all__ = ["REGISTRY", "get_change", "list_changes"]


def _build() -> dict[str, Change]:
    from faults.autoscaler import AutoscalerPolicy, AutoscalerRun
    from faults.deploy import CanaryDeploy
    from faults.engine import EngineCpus, EngineKvBudget, EngineMaxNumSeqs, EngineRestart
    from faults.gateway import GatewayAdmission, GatewayRagTimeout
    from faults.network import NetworkLatency
    from faults.retriever import RetrieverLatency
    from faults.traffic import TrafficTenant

    changes: list[Change] = [
        TrafficTenant(),
        RetrieverLatency(),
        NetworkLatency(),
        EngineKvBudget(),
        EngineCpus(),
        EngineMaxNumSeqs(),
        EngineRestart(),
        GatewayAdmission(),
        GatewayRagTimeout(),
        CanaryDeploy(),
        AutoscalerRun(),
        AutoscalerPolicy(),
    ]
    return {change.name: change for change in changes}


REGISTRY: dict[str, Change] = _build()


def get_change(name: str) -> Change:
    try:
        return REGISTRY[name]
    except KeyError:
        raise FaultError(f"no fault named {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def list_changes() -> list[Change]:
    return sorted(REGISTRY.values(), key=lambda c: (c.category.value, c.name))
