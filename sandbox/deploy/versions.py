"""Engine versions: named vLLM configurations, defined in ``stack/versions.yaml``.

A version says how an engine replica is configured (model, flags, KV budget); where it runs and
who routes to it is the deployment's business (``sandbox.deploy.deployer``). A field left unset
takes the stack's own setting, so ``stable`` is exactly the engine ``make up`` starts.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT, CpuList, Settings
from sandbox.validation import field_problems

__all__ = [
    "DEFAULT_VERSIONS_FILE",
    "EngineVersion",
    "VersionError",
    "load_versions",
    "version_settings",
]

DEFAULT_VERSIONS_FILE = REPO_ROOT / "stack" / "versions.yaml"


class VersionError(ConfigError):
    """A versions file is malformed, or a version is unknown; the message names file and field."""


class EngineVersion(BaseModel):
    """One engine configuration. ``None`` means "as the stack's settings say"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    model_dir: Path | None = Field(None, description="model folder (config.json, tokenizer)")
    served_model_name: str | None = None
    max_model_len: int | None = Field(
        None, ge=64, description="--max-model-len: prompt + output tokens"
    )
    max_num_seqs: int | None = Field(
        None, ge=1, description="--max-num-seqs: sequences batched at once"
    )
    kv_tokens: int | None = Field(
        None, ge=1, description="the KV budget in tokens (whole blocks of --block-size)"
    )
    kv_cache_space_gib: float | None = Field(None, gt=0, description="VLLM_CPU_KVCACHE_SPACE")
    threads_bind: str | None = Field(None, description="VLLM_CPU_OMP_THREADS_BIND")
    cpus: CpuList | None = Field(
        None,
        description="CPU cores each replica may use (1, 0-3, 0,2): its own cores, like its own GPU",
    )
    extra_args: tuple[str, ...] = Field((), description="more vLLM server flags, appended as given")
    ready_timeout_s: float = Field(
        240.0, gt=0, description="a replica not ready by then is failed and removed"
    )


def load_versions(path: Path = DEFAULT_VERSIONS_FILE) -> dict[str, EngineVersion]:
    """Every version of the file by name; a bad file raises VersionError naming file and field."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise VersionError(f"{path}: no such versions file") from None
    except yaml.YAMLError as exc:
        raise VersionError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        raise VersionError(f"{path}: expected a mapping `versions:` of name -> fields")
    versions: dict[str, EngineVersion] = {}
    for name, fields in data["versions"].items():
        try:
            versions[str(name)] = EngineVersion.model_validate(
                {**(fields or {}), "name": str(name)}
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {msg}" for field, msg in field_problems(exc, prefix=f"versions.{name}.")
            )
            raise VersionError(f"{path}: {problems}") from None
    if "stable" not in versions:
        raise VersionError(
            f"{path}: versions.stable is missing (the autoscaler and rollback need it)"
        )
    return versions


def version_settings(settings: Settings, version: EngineVersion) -> Settings:
    """The stack's settings with the version's engine fields applied (what engine_component reads)."""
    changes = {
        "model_dir": version.model_dir,
        "served_model_name": version.served_model_name,
        "max_model_len": version.max_model_len,
        "max_num_seqs": version.max_num_seqs,
        "kv_tokens": version.kv_tokens,
        "kv_cache_space_gib": version.kv_cache_space_gib,
        "engine_threads_bind": version.threads_bind,
        "engine_cpus": version.cpus,
    }
    return settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
