"""compose.yaml checked statically: no Docker engine runs on CI machines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def service_names(compose: dict[str, Any]) -> set[str]:
    """Service names plus their network aliases: both resolve on the compose network."""
    names = set(compose["services"])
    for service in compose["services"].values():
        networks = service.get("networks") or {}
        if isinstance(networks, dict):
            for network in networks.values():
                names.update((network or {}).get("aliases", []))
    return names


def test_matches_the_compose_specification() -> None:
    # The dev extra installs it beside the interpreter running the tests.
    checker = shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    ) or shutil.which("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema not installed (run `make setup`)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_scrape_target_is_a_service(compose: dict[str, Any]) -> None:
    names = service_names(compose)
    targets_dir = REPO_ROOT / "stack" / "prometheus" / "targets"
    hosts = {
        address.split(":")[0]
        for path in targets_dir.glob("*.json")
        for group in json.loads(path.read_text())
        for address in group["targets"]
    }
    config = yaml.safe_load((REPO_ROOT / "stack" / "prometheus" / "prometheus.yml").read_text())
    for alertmanager in config["alerting"]["alertmanagers"]:
        for static in alertmanager["static_configs"]:
            hosts.update(t.split(":")[0] for t in static["targets"])
    assert hosts, "no targets found"
    assert hosts <= names, f"targets with no compose service: {sorted(hosts - names)}"
    # And every job of the scrape config has its discovery file in the repository.
    for job in config["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            for file in sd["files"]:
                assert (targets_dir / Path(file).name).exists(), (
                    f"{job['job_name']}: {file} is not in stack/prometheus/targets"
                )


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO_ROOT / source).exists(), (
                    f"{name} mounts {source}, which is not in the repository"
                )
        build = service.get("build")
        if build:
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).exists()


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"v?\d+(\.\d+)+", tag), (
            f"{name}: image {image} is not pinned to a version"
        )


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


# Distroless images have no program a compose healthcheck could run.
NO_HEALTHCHECK = {
    "otel-collector": "distroless image; its health_check extension answers on :13133"
}


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name not in NO_HEALTHCHECK:
            assert "healthcheck" in service, f"{name} has no healthcheck"


def test_collector_pipelines_use_defined_parts_and_reach_tempo(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO_ROOT / "stack" / "otel-collector" / "config.yaml").read_text())
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for part in pipeline.get(kind, []):
                assert part in config[kind], (
                    f"pipeline {pipeline_name} uses undefined {kind[:-1]} {part}"
                )
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]
    exporter_host = config["exporters"]["otlp/tempo"]["endpoint"].split(":")[0]
    assert exporter_host in service_names(compose)
    tempo = yaml.safe_load((REPO_ROOT / "stack" / "tempo" / "tempo.yaml").read_text())
    assert tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(
        ":4317"
    )


def test_prometheus_exemplars_link_to_tempo() -> None:
    datasources = yaml.safe_load(
        (
            REPO_ROOT / "stack" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
        ).read_text()
    )["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    links = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {link["datasourceUid"] for link in links} <= set(by_uid)
    assert by_uid["tempo"]["type"] == "tempo"


def test_gpu_profile_reserves_a_gpu(compose: dict[str, Any]) -> None:
    engine = compose["services"]["engine-gpu"]
    assert engine["profiles"] == ["gpu"]
    devices = engine["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert compose["services"]["engine-cpu"]["profiles"] == ["cpu"]


def test_grafana_datasources_point_at_services(compose: dict[str, Any]) -> None:
    names = service_names(compose)
    datasources = yaml.safe_load(
        (
            REPO_ROOT / "stack" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
        ).read_text()
    )
    for source in datasources["datasources"]:
        host = re.match(r"https?://([^:/]+)", source["url"]).group(1)  # type: ignore[union-attr]
        assert host in names, f"datasource {source['name']} points at {host}, not a compose service"


def test_every_engine_sends_traces_to_the_collector_over_http(compose: dict[str, Any]) -> None:
    collector = compose["services"]["otel-collector"]
    config = yaml.safe_load((REPO_ROOT / "stack" / "otel-collector" / "config.yaml").read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    for name in ("engine-gpu", "engine-cpu"):
        engine = compose["services"][name]
        flags = dict(arg.split("=", 1) for arg in engine["command"] if "=" in arg)
        assert flags["--otlp-traces-endpoint"] == "http://otel-collector:4318/v1/traces"
        assert engine["environment"]["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
        assert engine["shm_size"]
        assert "otel-collector" in engine["depends_on"]
    assert "127.0.0.1:4318:4318" in collector["ports"]


def test_every_engine_has_a_block_size_and_the_gpu_a_bounded_share(compose: dict[str, Any]) -> None:
    for name in ("engine-gpu", "engine-cpu"):
        flags = dict(
            arg.split("=", 1) for arg in compose["services"][name]["command"] if "=" in arg
        )
        assert flags["--block-size"] == "128", name
    gpu = dict(a.split("=", 1) for a in compose["services"]["engine-gpu"]["command"] if "=" in a)
    # Stable engine, canary and an added replica on one GPU.
    assert 3 * float(gpu["--gpu-memory-utilization"]) <= 0.95


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on as a list waits for nothing"
        for dependency, condition in depends.items():
            wanted = (
                "service_healthy" if "healthcheck" in services[dependency] else "service_started"
            )
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    gateway = services["gateway"]["depends_on"]
    assert gateway["engine-gpu"]["required"] is False and gateway["engine-cpu"]["required"] is False


def test_images_built_here_get_the_cpu_torch_index(compose: dict[str, Any]) -> None:
    for name in ("engine-cpu", "retriever", "gateway"):
        build = compose["services"][name]["build"]
        assert "TORCH_INDEX" in build["args"], name
        dockerfile = (REPO_ROOT / build["dockerfile"]).read_text()
        assert (
            "ARG TORCH_INDEX" in dockerfile and '--index-url "$TORCH_INDEX" "torch==' in dockerfile
        )
    assert "libnuma1" in (REPO_ROOT / "docker" / "engine-cpu.Dockerfile").read_text()


def test_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    targets_dir = REPO_ROOT / "stack" / "prometheus" / "targets"
    jobs = {path.stem: json.loads(path.read_text()) for path in targets_dir.glob("*.json")}
    assert {"engine", "gateway", "retriever", "prometheus", "alertmanager"} <= set(jobs)
    assert jobs["engine"][0]["targets"] == ["engine:8000"]
    # The same labels the local engine's target carries, so panels split by version alike.
    assert jobs["engine"][0]["labels"] == {"version": "stable", "replica": "engine"}


def test_tempo_writes_span_metrics_to_prometheus(compose: dict[str, Any]) -> None:
    tempo = yaml.safe_load((REPO_ROOT / "stack" / "tempo" / "tempo.yaml").read_text())
    write = tempo["metrics_generator"]["storage"]["remote_write"][0]["url"]
    assert write.startswith("http://prometheus:9090/")
    assert "--web.enable-remote-write-receiver" in compose["services"]["prometheus"]["command"]
    processors = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert {"service-graphs", "span-metrics"} <= set(processors)


def test_alertmanager_posts_where_the_drill_listens_in_compose(compose: dict[str, Any]) -> None:
    from unittest.mock import MagicMock

    from sandbox.runtime import LocalRuntime, webhook_bind_host
    from sandbox.runtime.docker import DockerRuntime
    from sandbox.settings import load_settings

    settings = load_settings()
    config = yaml.safe_load((REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml").read_text())
    urls = {w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])}
    assert urls == {f"http://host.docker.internal:{settings.alert_webhook_port}/alerts"}
    assert "host.docker.internal:host-gateway" in compose["services"]["alertmanager"]["extra_hosts"]
    # host.docker.internal is the host's bridge address: a webhook on 127.0.0.1 never sees it.
    assert webhook_bind_host(settings, DockerRuntime(MagicMock())) == settings.host_gateway_bind
    assert settings.host_gateway_bind not in ("127.0.0.1", "localhost")
    assert webhook_bind_host(settings, LocalRuntime(settings.run_dir)) == "127.0.0.1"


def test_the_drill_s_load_generator_is_scraped_in_compose(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from unittest.mock import MagicMock

    from sandbox.components.prometheus import render_prometheus_config
    from sandbox.loadgen.component import loadgen_component
    from sandbox.runtime.docker import DockerRuntime
    from sandbox.settings import load_settings

    settings = load_settings(run_dir=tmp_path)
    config = yaml.safe_load((REPO_ROOT / "stack" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "loadgen")
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "${SANDBOX_RUN_DIR:-./.sandbox/run}/targets:/etc/prometheus/run-targets:ro" in mounts
    assert job["file_sd_configs"][0]["files"] == ["/etc/prometheus/run-targets/loadgen.json"]
    # The address the sandbox writes becomes the container's on the project's network.
    (rule,) = job["relabel_configs"]
    (target,) = loadgen_component().scrape(settings)
    assert re.fullmatch(rule["regex"], target.address)
    # The runtime gives each container it adds its name as network alias.
    kwargs = DockerRuntime(MagicMock(), network="n").run_kwargs(
        loadgen_component().spec(settings), aliases=("loadgen",)
    )
    assert "networking_config" in kwargs
    container_port = loadgen_component().spec(settings).container_port
    assert rule["replacement"] == f"loadgen:{container_port}"
    # Locally the address is right as written: the rendered copy has no such rule.
    local = yaml.safe_load(render_prometheus_config(settings).read_text())
    local_job = next(j for j in local["scrape_configs"] if j["job_name"] == "loadgen")
    assert "relabel_configs" not in local_job
    assert local_job["file_sd_configs"][0]["files"] == [str(settings.targets_dir / "loadgen.json")]


def test_replicas_the_sandbox_adds_are_scraped_by_name_in_compose(tmp_path: Path) -> None:
    from sandbox.components.prometheus import render_prometheus_config
    from sandbox.deploy.engines import VllmLauncher
    from sandbox.settings import Mode, load_settings

    settings = load_settings(run_dir=tmp_path)
    config = yaml.safe_load((REPO_ROOT / "stack" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "engine")
    files = [f for sd in job["file_sd_configs"] for f in sd["files"]]
    assert files == [
        "/etc/prometheus/targets/engine.json",
        "/etc/prometheus/run-targets/engine.json",
    ]
    (rule,) = job["relabel_configs"]
    assert rule["action"] == "drop"
    # A canary's address as the deployer writes it in compose survives; the host's does not.
    canary = VllmLauncher(settings, Mode.COMPOSE).address("canary", 8101)
    assert canary == "canary:8000" and not re.fullmatch(rule["regex"], canary)
    assert re.fullmatch(rule["regex"], f"127.0.0.1:{settings.engine_port}")
    local = yaml.safe_load(render_prometheus_config(settings).read_text())
    local_job = next(j for j in local["scrape_configs"] if j["job_name"] == "engine")
    assert "relabel_configs" not in local_job
    assert local_job["file_sd_configs"] == [
        {"files": [str(settings.targets_dir / "engine.json")], "refresh_interval": "2s"}
    ]
