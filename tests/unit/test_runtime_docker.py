"""The Docker runtime, checked against the Docker SDK's own API without a Docker engine.

There is no engine on CI machines; what can be checked honestly is that the arguments we build
are ones the SDK accepts (its own conversion to the Engine API's create-container body), and that
a missing engine gives a clear error instead of a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from docker.models.containers import Container, _create_container_args

import docker
from sandbox.components.engine import engine_component
from sandbox.runtime.base import RuntimeFailure, ServiceSpec, StartError
from sandbox.runtime.docker import (
    LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    DockerRuntime,
    docker_available,
    image_mismatch,
    is_compose_service,
    pick_container,
    same_flags,
    sandbox_name_of,
)
from sandbox.settings import REPO_ROOT, load_settings


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "compose.yaml").read_text()))


@pytest.fixture()
def offline_client() -> docker.DockerClient:
    # Creating a client does not connect; every call fails as it would with no engine running.
    return docker.DockerClient(
        base_url="unix:///nonexistent/docker.sock", version="1.43", timeout=1
    )


def test_run_kwargs_are_accepted_by_the_sdk(offline_client: docker.DockerClient) -> None:
    settings = load_settings()
    spec = engine_component().spec(load_settings(engine_backend="cuda"))
    kwargs = DockerRuntime(offline_client).run_kwargs(spec)
    assert kwargs["name"] == "llm-sandbox-engine"
    assert kwargs["ports"] == {"8000/tcp": ("127.0.0.1", settings.engine_port)}
    assert kwargs["labels"][LABEL] == "engine"
    # The SDK turns run() kwargs into the create-container body; unknown keys raise TypeError.
    body = _create_container_args(
        {k: v for k, v in kwargs.items() if k != "detach"} | {"version": "1.43"}
    )
    assert body["host_config"]["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
    assert body["host_config"]["PortBindings"] == {
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(settings.engine_port)}]
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


# -- the compose project's containers ---------------------------------------------------------
# Containers as the SDK builds them from the Engine API's list answer (no engine involved).


def _container(
    client: docker.DockerClient, name: str, labels: dict[str, str], status: str = "running"
) -> Container:
    return Container(
        attrs={
            "Id": name * 4,
            "Name": f"/{name}",
            "Config": {"Labels": labels},
            "State": {"Status": status},
        },
        client=client,
    )


def _compose(service: str) -> dict[str, str]:
    return {
        PROJECT_LABEL: "llm-sandbox",
        SERVICE_LABEL: service,
        "com.docker.compose.oneoff": "False",
    }


def test_compose_containers_are_found_by_their_compose_labels(
    offline_client: docker.DockerClient,
) -> None:
    listed = [
        _container(offline_client, "llm-sandbox-engine-cpu-1", _compose("engine-cpu"), "exited"),
        _container(offline_client, "llm-sandbox-engine-gpu-1", _compose("engine-gpu")),
        _container(offline_client, "llm-sandbox-otel-collector-1", _compose("otel-collector")),
        _container(offline_client, "llm-sandbox-grafana-1", _compose("grafana")),
        _container(offline_client, "llm-sandbox-gateway-1", _compose("gateway")),
    ]
    engine = pick_container(listed, "engine")
    assert engine is not None and engine.name == "llm-sandbox-engine-gpu-1"  # the running profile
    sink = pick_container(listed, "tracesink")
    assert sink is not None and sink.name == "llm-sandbox-otel-collector-1"
    assert pick_container(listed, "grafana") is None  # not one of the sandbox's components
    assert {sandbox_name_of(c) for c in listed} == {"engine", "tracesink", "gateway", None}
    assert all(is_compose_service(c) for c in listed)


def test_a_container_the_sandbox_added_wins_over_compose(
    offline_client: docker.DockerClient,
) -> None:
    runtime = DockerRuntime(offline_client)
    spec = engine_component(name="engine-2", version="stable", port=8101).spec(load_settings())
    added = _container(offline_client, "llm-sandbox-engine-2", runtime.labels(spec))
    assert pick_container([added], "engine-2") is added
    assert not is_compose_service(added)


def test_the_project_filter_is_compose_s_label(offline_client: docker.DockerClient) -> None:
    runtime = DockerRuntime(offline_client, project="my-sandbox")
    # What the SDK sends as the list call's `filters` query parameter.
    assert json.loads(docker.utils.convert_filters(runtime.project_filters())) == {
        "label": ["com.docker.compose.project=my-sandbox"]
    }


def test_added_containers_belong_to_the_compose_project(
    offline_client: docker.DockerClient,
) -> None:
    settings = load_settings(engine_backend="cuda")
    runtime = DockerRuntime(offline_client, project="llm-sandbox", network="llm-sandbox_default")
    kwargs = runtime.run_kwargs(
        engine_component(name="canary", version="canary-slow").spec(settings)
    )
    labels = kwargs["labels"]
    # `docker compose down --remove-orphans` removes it, and with it the network.
    assert labels[PROJECT_LABEL] == "llm-sandbox"
    assert labels[SERVICE_LABEL] == "canary" and labels[LABEL] == "canary"
    assert labels["sandbox.version"] == "canary-slow"
    assert kwargs["network"] == "llm-sandbox_default"


def test_the_engine_container_matches_compose(
    offline_client: docker.DockerClient, compose: dict[str, Any]
) -> None:
    for backend, service in (("cuda", "engine-gpu"), ("cpu", "engine-cpu")):
        settings = load_settings(engine_backend=backend)
        kwargs = DockerRuntime(offline_client).run_kwargs(engine_component().spec(settings))
        defined = compose["services"][service]
        assert kwargs["image"] == defined["image"]
        assert _pairs(kwargs["command"]) == _pairs(defined["command"]), service
        assert {k: defined["environment"][k] for k in kwargs["environment"]} == kwargs[
            "environment"
        ]
        mounts = {f"{host}:{m['bind']}:{m['mode']}" for host, m in kwargs["volumes"].items()}
        assert {m.replace("./", f"{REPO_ROOT}/", 1) for m in defined["volumes"]} == mounts
        assert kwargs["shm_size"] == defined["shm_size"]
        assert f"{defined['ports'][0].rsplit(':', 1)[1]}/tcp" in kwargs["ports"]
        body = _create_container_args(
            {k: v for k, v in kwargs.items() if k != "detach"} | {"version": "1.43"}
        )
        requests = body["host_config"].get("DeviceRequests") or []
        if backend == "cuda":
            reserved = defined["deploy"]["resources"]["reservations"]["devices"][0]
            assert requests[0]["Count"] == reserved["count"] == 1  # one GPU, shared
            assert requests[0]["Capabilities"] == [reserved["capabilities"]]
        else:
            assert requests == [] and "deploy" not in defined


def _pairs(argv: list[str]) -> dict[str, str]:
    """``--flag value`` and ``--flag=value`` alike, as a mapping (a bare flag maps to "")."""
    pairs: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        flag, eq, value = item.partition("=")
        if eq:
            pairs[flag] = value
        elif flag in ("--enforce-eager",):
            pairs[flag] = ""
        else:
            pairs[flag] = next(items)
    return pairs


def test_an_engine_change_stands_in_for_compose_s_engine(
    offline_client: docker.DockerClient, compose: dict[str, Any]
) -> None:
    compose_command = compose["services"]["engine-gpu"]["command"]
    settings = load_settings(engine_backend="cuda")
    # Same flags as compose.yaml: `up` starts compose's own engine again.
    assert same_flags(compose_command, engine_component().spec(settings).command)
    # engine-kv-budget: other flags, so the sandbox's container takes the `engine` alias.
    changed = engine_component().spec(settings.model_copy(update={"kv_tokens": 3072}))
    assert not same_flags(compose_command, changed.command)
    runtime = DockerRuntime(offline_client, network="llm-sandbox_default")
    kwargs = runtime.run_kwargs(changed, aliases=("engine", "engine-gpu", "engine-cpu"))
    body = _create_container_args(
        {k: v for k, v in kwargs.items() if k != "detach"} | {"version": "1.43"}
    )
    endpoint = body["networking_config"]["EndpointsConfig"]["llm-sandbox_default"]
    assert "engine" in endpoint["Aliases"]


def test_an_engine_of_the_other_backend_never_stands_in(
    offline_client: docker.DockerClient,
) -> None:
    # A GPU host running the CPU profile: the settings' backend (cuda) must not replace it.
    compose_engine = Container(
        attrs={
            "Id": "c" * 12,
            "Name": "/llm-sandbox-engine-cpu-1",
            "Config": {"Labels": _compose("engine-cpu"), "Image": "llm-sandbox/engine-cpu:0.32.0"},
            "State": {"Status": "running"},
        },
        client=offline_client,
    )
    cuda = engine_component().spec(load_settings(engine_backend="cuda"))
    why = image_mismatch(cuda, compose_engine)
    assert why is not None and "SANDBOX_ENGINE_BACKEND" in why
    cpu = engine_component().spec(load_settings(engine_backend="cpu"))
    assert image_mismatch(cpu, compose_engine) is None
