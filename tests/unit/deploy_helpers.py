"""Stand-in engines for unit tests of deployments and the autoscaler (see standin_engine.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from sandbox.components.base import Readiness
from sandbox.deploy.engines import in_flight_from_metrics
from sandbox.deploy.state import Replica
from sandbox.deploy.versions import EngineVersion
from sandbox.runtime.base import ServiceSpec

__all__ = ["STANDIN_VERSIONS", "StandInLauncher"]

SCRIPT = Path(__file__).with_name("standin_engine.py")

# Version name -> the stand-in's flags, standing for how a real engine of that version behaves.
STANDIN_FLAGS: dict[str, tuple[str, ...]] = {
    "stable": (),
    "canary-good": (),
    "slow-start": ("--ready-after", "1.5"),
    "never-ready": ("--never-ready",),
    "broken-flag": ("--crash",),
}
STANDIN_VERSIONS = {
    name: EngineVersion(name=name, ready_timeout_s=3.0 if name == "never-ready" else 20.0)
    for name in STANDIN_FLAGS
}


class StandInLauncher:
    """A Launcher (sandbox.deploy.engines) whose replicas are stand-in HTTP servers."""

    def spec(self, version: EngineVersion, replica: Replica) -> ServiceSpec:
        argv = (
            sys.executable,
            str(SCRIPT),
            "--port",
            str(replica.port),
            *STANDIN_FLAGS[version.name],
        )
        return ServiceSpec(name=replica.name, argv=argv, port=replica.port)

    def url(self, name: str, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def address(self, name: str, port: int) -> str:
        return f"127.0.0.1:{port}"

    def check(self, version: EngineVersion, replica: Replica, client: httpx.Client) -> Readiness:
        try:
            health = client.get(f"{replica.url}/health")
            if health.status_code != 200:
                return Readiness.no(f"/health answered {health.status_code}")
            done = client.post(
                f"{replica.url}/v1/completions",
                json={"model": "tiny", "prompt": "x", "max_tokens": 1},
            )
        except httpx.HTTPError as exc:
            return Readiness.no(type(exc).__name__)
        return (
            Readiness.ok()
            if done.status_code == 200
            else Readiness.no(f"completion {done.status_code}")
        )

    def in_flight(self, replica: Replica, client: httpx.Client) -> float | None:
        try:
            return in_flight_from_metrics(client.get(f"{replica.url}/metrics").text)
        except httpx.HTTPError:
            return None
