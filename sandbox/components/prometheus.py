"""Prometheus: the real binary, with the config from ``stack/prometheus`` rendered for local mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from sandbox.components.base import (
    Component,
    Readiness,
    http_ready,
    write_generated_yaml,
)
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["PROMETHEUS_IMAGE", "STACK_DIR", "prometheus_component", "render_prometheus_config"]

PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
STACK_DIR = REPO_ROOT / "stack" / "prometheus"
CONTAINER_DIR = "/etc/prometheus"


def render_prometheus_config(
    settings: Settings, source: Path = STACK_DIR / "prometheus.yml"
) -> Path:
    """Write the local copy of the config: container paths become repository and run-dir paths."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    config["global"]["scrape_interval"] = f"{settings.scrape_interval_s:g}s"
    config["global"]["evaluation_interval"] = f"{settings.scrape_interval_s:g}s"
    config["global"]["scrape_timeout"] = f"{settings.scrape_interval_s:g}s"
    config["rule_files"] = [
        str(STACK_DIR / pattern.removeprefix(CONTAINER_DIR + "/"))
        for pattern in config.get("rule_files", [])
    ]
    for alertmanager in config["alerting"]["alertmanagers"]:
        alertmanager["static_configs"] = [
            {"targets": [f"{settings.host}:{settings.alertmanager_port}"]}
        ]
    for job in config["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(settings.targets_dir / Path(f).name) for f in sd["files"]]
        # Both files of a job are the run directory's here: one entry, no duplicate targets.
        files = [f for sd in job.get("file_sd_configs", []) for f in sd["files"]]
        if files:
            job["file_sd_configs"] = [
                {**job["file_sd_configs"][0], "files": list(dict.fromkeys(files))}
            ]
        # Relabel rules are compose's (they map host addresses to containers): local addresses
        # are right as written.
        job.pop("relabel_configs", None)
    return write_generated_yaml(settings.run_dir / "prometheus" / "prometheus.yml", config, source)


def _check(settings: Settings, client: httpx.Client) -> Readiness:
    ready = http_ready(client, f"{settings.prometheus_url}/-/ready", "prometheus /-/ready")
    if not ready.ready:
        return ready
    # Ready means every target written to the discovery files is scraped and up.
    expected = _expected_targets(settings)
    try:
        active = client.get(
            f"{settings.prometheus_url}/api/v1/targets", params={"state": "active"}
        ).json()
    except (httpx.HTTPError, ValueError) as exc:
        return Readiness.no(f"prometheus targets API: {type(exc).__name__}")
    seen = {
        (t["labels"].get("job"), t["labels"].get("instance")): (t["health"], t.get("lastError", ""))
        for t in active["data"]["activeTargets"]
    }
    problems = []
    for job, address in sorted(expected):
        health, error = seen.get((job, address), ("not discovered yet", ""))
        if health != "up":
            problems.append(f"{job} {address}: {health}{' (' + error + ')' if error else ''}")
    return Readiness.no("targets not up: " + "; ".join(problems)) if problems else Readiness.ok()


def _expected_targets(settings: Settings) -> set[tuple[str, str]]:
    import json

    expected = set()
    for path in settings.targets_dir.glob("*.json"):
        for group in json.loads(path.read_text() or "[]"):
            for address in group.get("targets", []):
                expected.add((path.stem, address))
    return expected


def _spec(settings: Settings) -> ServiceSpec:
    config = render_prometheus_config(settings)
    data_dir = settings.run_dir / "prometheus" / "data"
    return ServiceSpec(
        name="prometheus",
        argv=(
            settings.prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={settings.host}:{settings.prometheus_port}",
            "--web.enable-lifecycle",  # POST /-/reload after rules change
            "--enable-feature=exemplar-storage",  # keep the gateway's trace exemplars
            "--storage.tsdb.retention.time=2d",
        ),
        port=settings.prometheus_port,
        image=PROMETHEUS_IMAGE,
        container_port=9090,
    )


def prometheus_component() -> Component:
    # Last: it comes after everything it scrapes.
    return Component.on_port(
        "prometheus",
        lambda settings: settings.prometheus_port,
        spec=_spec,
        check=_check,
        order=90,
    )
