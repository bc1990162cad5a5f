"""The autoscaler as a component of the stack."""

from __future__ import annotations

import sys

import httpx

from sandbox.autoscaler.options import AutoscalerOptions, load_options, options_path, save_options
from sandbox.components.base import Component, Readiness, http_ready
from sandbox.runtime.base import ServiceSpec
from sandbox.settings import REPO_ROOT, Settings

__all__ = ["AUTOSCALER_IMAGE", "autoscaler_component"]

AUTOSCALER_IMAGE = "llm-sandbox/app:0.1.0"


def autoscaler_component(options: AutoscalerOptions | None = None) -> Component:
    """The service ``python -m sandbox.autoscaler``. ``options`` (when given) are written to
    ``<run_dir>/autoscaler.json`` when it starts; otherwise the file's (or the defaults) apply."""

    def _options(settings: Settings) -> AutoscalerOptions:
        return options or load_options(options_path(settings.run_dir))

    def spec(settings: Settings) -> ServiceSpec:
        chosen = _options(settings)
        save_options(options_path(settings.run_dir), chosen)
        return ServiceSpec(
            name="autoscaler",
            argv=(sys.executable, "-m", "sandbox.autoscaler"),
            port=chosen.port,
            # The service reads the same settings as the process that started it.
            env={
                f"SANDBOX_{k.upper()}": str(v)
                for k, v in settings.model_dump(mode="json").items()
                if v is not None
            },
            cwd=REPO_ROOT,
            image=AUTOSCALER_IMAGE,
            command=("python", "-m", "sandbox.autoscaler"),
            container_port=chosen.port,
        )

    def check(settings: Settings, client: httpx.Client) -> Readiness:
        return http_ready(
            client, f"{settings.url(_options(settings).port)}/metrics", "autoscaler /metrics"
        )

    return Component.on_port(
        "autoscaler", lambda settings: _options(settings).port, spec=spec, check=check, order=40
    )
