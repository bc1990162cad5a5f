"""The Docker runtime, checked against the Docker SDK's own API without a Docker engine.

There is no engine on CI machines; what can be checked honestly is that the arguments we build
are ones the SDK accepts (its own conversion to the Engine API's create-container body), and that
a missing engine gives a clear error instead of a traceback.
"""

from __future__ import annotations

import pytest
from docker.models.containers import _create_container_args

import docker
from sandbox.components.engine import engine_component
from sandbox.runtime.base import RuntimeFailure, ServiceSpec, StartError
from sandbox.runtime.docker import LABEL, DockerRuntime, docker_available
from sandbox.settings import load_settings


@pytest.fixture()
def offline_client() -> docker.DockerClient:
    # Creating a client does not connect; every call fails as it would with no engine running.
    return docker.DockerClient(
        base_url="unix:///nonexistent/docker.sock", version="1.43", timeout=1
    )


def test_run_kwargs_are_accepted_by_the_sdk(offline_client: docker.DockerClient) -> None:
    settings = load_settings()
    spec = engine_component().spec(settings)
    kwargs = DockerRuntime(offline_client).run_kwargs(spec)
    assert kwargs["name"] == "sandbox-engine"
    assert kwargs["ports"] == {f"{settings.engine_port}/tcp": ("127.0.0.1", settings.engine_port)}
    assert kwargs["labels"][LABEL] == "engine"
    # The SDK turns run() kwargs into the create-container body; unknown keys raise TypeError.
    body = _create_container_args(
        {k: v for k, v in kwargs.items() if k != "detach"} | {"version": "1.43"}
    )
    assert body["host_config"]["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
    assert body["host_config"]["PortBindings"] == {
        f"{settings.engine_port}/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": str(settings.engine_port)}
        ]
    }
    assert body["labels"]["sandbox.version"] == "stable"
    assert "CpusetCpus" not in body["host_config"]


def test_an_engine_confined_to_cores_gets_a_cpuset(offline_client: docker.DockerClient) -> None:
    spec = engine_component().spec(load_settings(engine_cpus="0,2"))
    kwargs = DockerRuntime(offline_client).run_kwargs(spec)
    body = _create_container_args(
        {k: v for k, v in kwargs.items() if k != "detach"} | {"version": "1.43"}
    )
    assert body["host_config"]["CpusetCpus"] == "0,2"


def test_a_spec_without_image_is_refused(offline_client: docker.DockerClient) -> None:
    with pytest.raises(StartError, match="no container image"):
        DockerRuntime(offline_client).run_kwargs(ServiceSpec(name="x", argv=("true",), port=1))


def test_no_engine_means_local_mode() -> None:
    assert docker_available(timeout_s=1) is False or pytest.skip(
        "a Docker engine answers on this machine"
    )


def test_missing_engine_is_a_clear_error(offline_client: docker.DockerClient) -> None:
    runtime = DockerRuntime(offline_client)
    with pytest.raises(RuntimeFailure, match="SANDBOX_MODE=local"):
        runtime.names()
    with pytest.raises(RuntimeFailure, match="did not answer"):
        runtime.status("engine")
