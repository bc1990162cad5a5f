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
