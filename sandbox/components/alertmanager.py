"""Alertmanager: the real binary; every alert is routed to the drill's webhook."""

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

__all__ = ["ALERTMANAGER_IMAGE", "alertmanager_component", "render_alertmanager_config"]

ALERTMANAGER_IMAGE = "prom/alertmanager:v0.27.0"
SOURCE = REPO_ROOT / "stack" / "alertmanager" / "alertmanager.yml"


def render_alertmanager_config(settings: Settings, source: Path = SOURCE) -> Path:
    """Local copy of the config, with the webhook pointed at the drill's local listener."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    webhook = f"{settings.url(settings.alert_webhook_port)}/alerts"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook
    return write_generated_yaml(
        settings.run_dir / "alertmanager" / "alertmanager.yml", config, source
    )


def _forget_notifications(settings: Settings) -> None:
    """Delete the notification log of a previous run. Alertmanager dedups by it across restarts:
    an alert that was still firing when the stack went down, and fires again with the same
    labels after `make up`, would be taken as already sent and not page the new drill's
    receiver for `repeat_interval`. Silences are kept: a person set those on purpose."""
    (settings.run_dir / "alertmanager" / "data" / "nflog").unlink(missing_ok=True)


def _spec(settings: Settings) -> ServiceSpec:
    config = render_alertmanager_config(settings)
    _forget_notifications(settings)
    return ServiceSpec(
        name="alertmanager",
        argv=(
            settings.alertmanager_bin,
            f"--config.file={config}",
            f"--storage.path={settings.run_dir / 'alertmanager' / 'data'}",
            f"--web.listen-address={settings.host}:{settings.alertmanager_port}",
            # An empty address turns off the HA gossip that would otherwise bind 0.0.0.0:9094.
            "--cluster.listen-address=",
        ),
        port=settings.alertmanager_port,
        image=ALERTMANAGER_IMAGE,
        container_port=9093,
    )


def _check(settings: Settings, client: httpx.Client) -> Readiness:
    return http_ready(client, f"{settings.alertmanager_url}/-/ready", "alertmanager /-/ready")


def alertmanager_component() -> Component:
    return Component.on_port(
        "alertmanager",
        lambda settings: settings.alertmanager_port,
        spec=_spec,
        check=_check,
        order=20,
    )
