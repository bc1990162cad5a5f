"""The sandbox's one exception tree.

Every error the sandbox raises on purpose derives from ``SandboxError``, so a caller (the CLI, a
test, a drill) can catch the project's own failures apart from bugs. The branches say who is at
fault, which is what a caller needs to decide between "fix your input", "the service is down"
and "the drill failed":

    SandboxError
    ├── ConfigError              a file, setting or parameter is invalid (also a ValueError);
    │   │                        the message names the file or field and what is wrong
    │   ├── SettingsError        sandbox.settings
    │   ├── ManifestError        sandbox.drill.manifest (incident.yaml)
    │   ├── ProfileError         sandbox.loadgen.profile (load profiles)
    │   ├── PromptError          sandbox.loadgen.prompts
    │   ├── VersionError         sandbox.deploy.versions (stack/versions.yaml)
    │   ├── OptionsError         sandbox.autoscaler.options
    │   ├── SloError             sandbox.slos (stack/slos.yaml)
    │   ├── TransitionError      sandbox.deploy.state (an impossible replica state change)
    │   ├── RetrieverFaultError  sandbox.retriever.faults (a bad fault request)
    │   └── OtlpDecodeError      sandbox.tracesink.otlp (an OTLP payload that does not parse)
    ├── UpstreamError            a service the sandbox talks to failed or answered badly
    │   ├── PrometheusError      sandbox.promapi (Prometheus or Alertmanager HTTP API)
    │   ├── GatewayAdminError    sandbox.gateway.admin (the gateway's admin API)
    │   ├── RetrieverClientError sandbox.retriever.client
    │   └── RoutingError         sandbox.deploy.routing
    ├── StackError               sandbox.stack: the stack cannot come up or answer
    ├── RuntimeFailure           sandbox.runtime: a process or container cannot be run
    ├── DeployError              sandbox.deploy: a replica cannot be started or registered
    ├── FaultError               faults: a change cannot be injected or reverted
    │   ├── ParamError           bad parameters (also a ConfigError)
    │   ├── FaultConflict        the target is already changed by another active change
    │   ├── TargetGone           the target stopped while the change was active
    │   └── HttpStatusError      a service's admin API refused the change
    ├── TrafficError             sandbox.drill.traffic: the drill's load cannot start
    └── DrillFailure             sandbox.drill: a step of the drill failed (step and reason)

Exceptions used only as control flow inside one module (the gateway's ``Rejected``, the drill's
``GiveUp``) derive from ``SandboxError`` too, so nothing of ours escapes as a bare
``Exception``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SandboxError", "UpstreamError"]


class SandboxError(Exception):
    """Root of every error the sandbox raises on purpose."""


class ConfigError(SandboxError, ValueError):
    """A file, setting or parameter is invalid; the message names it and says how to fix it."""


class UpstreamError(SandboxError):
    """A service the sandbox talks to (Prometheus, the gateway, the retriever) failed."""
