"""Engine versions: named vLLM configurations, defined in ``stack/versions.yaml``.

A version says how an engine replica is configured (model, flags, KV budget); where it runs and
who routes to it is the deployment's business (``sandbox.deploy.deployer``). A field left unset
takes the stack's own setting, so ``stable`` is exactly the engine ``make up`` starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT, Settings
from sandbox.validation import field_problems

__all__ = [
    "DEFAULT_VERSIONS_FILE",
    "ENGINE_SETTINGS",
    "STABLE",
    "EngineVersion",
    "VersionError",
    "load_versions",
    "version_field",
    "version_settings",
]

DEFAULT_VERSIONS_FILE = REPO_ROOT / "stack" / "versions.yaml"
# The version the stack's own engine runs and the autoscaler adds replicas of (its replicas are
# routed on the gateway's track of the same name).
STABLE = "stable"


class VersionError(ConfigError):
    """A versions file is malformed, or a version is unknown; the message names file and field."""


# The fields of a version that configure its engine. Each is the stack setting of the same name
# (without its ``engine_`` prefix), validated exactly as that setting is, and a version that sets
# one overrides the setting for its replicas; one left out takes the stack's value.
ENGINE_SETTINGS: tuple[str, ...] = (
    "model_dir",
    "served_model_name",
    "max_model_len",
    "max_num_seqs",
    "kv_tokens",
    "kv_cache_space_gib",
    "engine_cpus",
)


def version_field(setting: str) -> str:
    """The version field that overrides a stack setting (``engine_cpus`` -> ``cpus``)."""
    return setting.removeprefix("engine_")


def _setting_adapter(setting: str) -> TypeAdapter[Any]:
    info = Settings.model_fields[setting]
    # The setting's type with its constraints (ge=256, a CPU list's validator...) attached.
    form: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    return TypeAdapter(form)


_ADAPTERS = {setting: _setting_adapter(setting) for setting in ENGINE_SETTINGS}
_SETTING_OF = {version_field(setting): setting for setting in ENGINE_SETTINGS}


class EngineVersion(BaseModel):
    """One engine configuration. ``None`` means "as the stack's settings say"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    # The engine settings it overrides (see ENGINE_SETTINGS; bounds are the settings' own).
    model_dir: Path | None = None
    served_model_name: str | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    kv_tokens: int | None = None
    kv_cache_space_gib: float | None = None
    cpus: str | None = None
    extra_args: tuple[str, ...] = Field((), description="more vLLM server flags, appended as given")
    ready_timeout_s: float = Field(
        240.0, gt=0, description="a replica not ready by then is failed and removed"
    )

    @field_validator(*(version_field(s) for s in ENGINE_SETTINGS))
    @classmethod
    def _validated_as_the_setting(cls, value: Any, info: ValidationInfo) -> Any:
        # The setting's own validation, so a version cannot ask for what the stack would refuse.
        if value is not None and info.field_name is not None:
            _ADAPTERS[_SETTING_OF[info.field_name]].validate_python(value)
        return value


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
    if STABLE not in versions:
        raise VersionError(
            f"{path}: versions.stable is missing (the autoscaler and rollback need it)"
        )
    return versions


def version_settings(settings: Settings, version: EngineVersion) -> Settings:
    """The stack's settings with the version's engine fields applied (what engine_component reads)."""
    changes = {setting: getattr(version, version_field(setting)) for setting in ENGINE_SETTINGS}
    return settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
