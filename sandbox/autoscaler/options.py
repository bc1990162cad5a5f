"""The autoscaler's options, and the file through which they change while it runs.

The service reads ``<run_dir>/autoscaler.json`` at start and again whenever the file changes,
so a fault, a mitigation or ``sandbox autoscaler set`` changes its behaviour by rewriting the
file (``update_options``) without restarting it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox.exceptions import ConfigError
from sandbox.validation import field_problems

__all__ = [
    "OPTIONS_FILE",
    "SIGNALS",
    "AutoscalerOptions",
    "OptionsError",
    "load_options",
    "options_path",
    "save_options",
    "update_options",
]

OPTIONS_FILE = "autoscaler.json"

# Named signals, each a PromQL expression whose value is *per ready replica* (as the HPA's
# averaged pod metrics), so desired = ceil(ready * value / target). `{sel}` is the replicas'
# label selector (the scaled track of the engine job).
SIGNALS: dict[str, str] = {
    # Requests waiting in vLLM's queue: the direct sign that replicas are short.
    "queue_depth": "avg(vllm:num_requests_waiting{{{sel}}})",
    # Requests being decoded: high before anything queues, capped by --max-num-seqs.
    "running": "avg(vllm:num_requests_running{{{sel}}})",
    # Share of the KV cache in use (0-1).
    "kv_usage": "avg(vllm:kv_cache_usage_perc{{{sel}}})",
    # Requests per second per ready replica, over a one-minute window: it lags a spike.
    "request_rate": (
        'sum(rate(sandbox_gateway_requests_total{{version="{track}"}}[1m]))'
        " / count(up{{{sel}}} == 1)"
    ),
}


class OptionsError(ConfigError):
    """Bad autoscaler options; the message names the field."""


class AutoscalerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # What to scale.
    track: str = Field("stable", description="the gateway version whose replicas are scaled")
    version: str = Field(
        "stable", description="the engine version (stack/versions.yaml) new replicas run"
    )

    # The signal and its target (the HPA's metric target, per ready replica).
    signal: str = Field(
        "queue_depth", description=f"one of {', '.join(SIGNALS)}, or 'custom' with `query`"
    )
    query: str | None = Field(
        None, description="PromQL for signal 'custom': a value per ready replica"
    )
    target: float = Field(
        4.0, gt=0, description="the signal's value per replica the autoscaler aims for"
    )
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="no change while |signal/target - 1| <= tolerance"
    )

    # Bounds.
    min_replicas: int = Field(
        1, ge=1, description="the warm minimum: replicas kept ready whatever the signal"
    )
    max_replicas: int = Field(
        2, ge=1, description="ceiling (on two cores keep to one replica more than the stack's)"
    )
    max_starting: int = Field(1, ge=1, description="replicas starting at once")

    # Stabilisation (as the HPA's behavior.*.stabilizationWindowSeconds) and cooldowns.
    scale_up_stabilization_s: float = Field(
        0.0, ge=0, description="scale up to the lowest recommendation of this window"
    )
    scale_down_stabilization_s: float = Field(
        60.0, ge=0, description="scale down to the highest recommendation of this window"
    )
    scale_up_cooldown_s: float = Field(
        15.0, ge=0, description="no scale-up sooner than this after the last scale event"
    )
    scale_down_cooldown_s: float = Field(
        60.0, ge=0, description="no scale-down sooner than this after the last scale event"
    )

    # Readiness.
    readiness_gating: bool = Field(
        True, description="route to a new replica only once it is ready (off = a fault)"
    )
    ready_timeout_s: float | None = Field(
        None,
        gt=0,
        description="a replica not ready by then is failed and removed (default: the version's)",
    )
    drain_timeout_s: float = Field(
        30.0, gt=0, description="longest wait for in-flight requests when removing a replica"
    )

    # The service.
    interval_s: float = Field(5.0, gt=0, description="time between decisions")
    host: str = "127.0.0.1"
    port: int = Field(8400, ge=1, le=65535, description="/metrics, /state and /health")

    @model_validator(mode="after")
    def _check(self) -> AutoscalerOptions:
        if self.signal == "custom":
            if not self.query:
                raise ValueError("signal 'custom' needs `query` (a PromQL expression)")
        elif self.signal not in SIGNALS:
            raise ValueError(f"signal {self.signal!r}: use one of {', '.join(SIGNALS)} or 'custom'")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")
        return self

    def promql(self) -> str:
        if self.signal == "custom":
            assert self.query is not None
            return self.query
        selector = f'job="engine",version="{self.track}"'
        return SIGNALS[self.signal].format(sel=selector, track=self.track)


def _validate(data: dict[str, Any], where: str) -> AutoscalerOptions:
    try:
        return AutoscalerOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {msg}" for field, msg in field_problems(exc, default="options")
        )
        raise OptionsError(f"{where}: {problems}") from None


def options_path(run_dir: Path) -> Path:
    return run_dir / OPTIONS_FILE


def load_options(path: Path) -> AutoscalerOptions:
    """The file's options; defaults when there is no file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return AutoscalerOptions()
    except json.JSONDecodeError as exc:
        raise OptionsError(f"{path}: not JSON ({exc})") from exc
    return _validate(data, str(path))


def save_options(path: Path, options: AutoscalerOptions) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(options.model_dump(mode="json"), indent=1) + "\n")
    tmp.replace(path)


def update_options(path: Path, **changes: Any) -> tuple[AutoscalerOptions, AutoscalerOptions]:
    """Validate and write changed options; return (before, after). The running service applies
    them at its next decision."""
    before = load_options(path)
    after = _validate({**before.model_dump(), **changes}, f"autoscaler options {sorted(changes)}")
    save_options(path, after)
    return before, after
