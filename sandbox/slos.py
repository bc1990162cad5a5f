"""The service level objectives, read from ``stack/slos.yaml`` (the one place their numbers live).

Alert rules, dashboard thresholds, profile goodput bounds and incident checks all come from
here; a wrong or missing number is an error naming the file and the field.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.exceptions import ConfigError
from sandbox.settings import REPO_ROOT
from sandbox.validation import field_problems

__all__ = ["SLOS_FILE", "SloError", "Slos", "load_slos"]

SLOS_FILE = REPO_ROOT / "stack" / "slos.yaml"


class SloError(ConfigError):
    """``stack/slos.yaml`` is missing, unreadable or holds a bad value."""


class Slos(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float = Field(gt=0, description="p99 time to first token, seconds")
    tpot_s: float = Field(gt=0, description="p99 time per output token, seconds")
    e2e_s: float = Field(gt=0, description="end-to-end time of a good request, seconds")
    error_ratio: float = Field(gt=0, lt=1, description="share of 5xx answers allowed")

    def value(self, name: str) -> float:
        """One objective by name (``ttft_s``), as incident checks cite it (``slo.ttft_s``)."""
        if name not in type(self).model_fields:
            known = ", ".join(f"slo.{n}" for n in type(self).model_fields)
            raise SloError(f"no SLO named {name!r} in {SLOS_FILE}; known: {known}")
        return float(getattr(self, name))


@cache
def load_slos(path: Path = SLOS_FILE) -> Slos:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SloError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SloError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Slos.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{f}: {m}" for f, m in field_problems(exc, default="(top level)"))
        raise SloError(f"{path}: {problems}") from None
