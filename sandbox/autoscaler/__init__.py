"""An HPA-like autoscaler of engine replicas.

- ``options``: what it scales on, bounds, windows, cooldowns, readiness gating (a file it re-reads);
- ``policy``: the decision, pure (desired = ceil(ready x signal / target), tolerance, windows);
- ``signal``: the PromQL query; ``controller``: the loop acting through ``sandbox.deploy``;
- ``metrics``/``server``: ``/metrics``, ``/state``, ``/health``; ``component``: for the stack.
"""

from sandbox.autoscaler.options import (
    SIGNALS,
    AutoscalerOptions,
    OptionsError,
    load_options,
    options_path,
    update_options,
)
from sandbox.autoscaler.policy import Decision, Direction, Observation, Policy

__all__ = [
    "SIGNALS",
    "AutoscalerOptions",
    "Decision",
    "Direction",
    "Observation",
    "OptionsError",
    "Policy",
    "load_options",
    "options_path",
    "update_options",
]
