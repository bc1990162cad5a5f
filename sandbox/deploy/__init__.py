"""Engine versions and deployments: canary, shadow, rollback, and the replicas the autoscaler adds.

- ``versions``: named engine configurations (``stack/versions.yaml``);
- ``state``: replicas and their state machine, persisted in the run directory;
- ``deployer``: starts, admits, drains and stops replicas;
- ``rollout``: a version as the canary with a share of traffic or a mirror, and rollback;
- ``engines``: how a replica is launched and checked (vLLM, locally or as a container);
- ``routing``: the gateway calls the deployer needs; ``targets``: Prometheus discovery.
Events go on the run's timeline (``sandbox.timeline``).
"""

from sandbox.deploy.deployer import BASE_ENGINE, Deployer, DeployError, Transition
from sandbox.deploy.rollout import Rollout
from sandbox.deploy.routing import GatewayRouting, HttpGatewayRouting, RoutingError
from sandbox.deploy.state import DeploymentState, Replica, ReplicaState, StateStore, TransitionError
from sandbox.deploy.versions import EngineVersion, VersionError, load_versions

__all__ = [
    "BASE_ENGINE",
    "DeployError",
    "Deployer",
    "DeploymentState",
    "EngineVersion",
    "GatewayRouting",
    "HttpGatewayRouting",
    "Replica",
    "ReplicaState",
    "Rollout",
    "RoutingError",
    "StateStore",
    "Transition",
    "TransitionError",
    "VersionError",
    "load_versions",
]
