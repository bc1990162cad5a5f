"""Where the generator sends its requests when nobody says otherwise: the one place to change.

The gateway, the learner's front door (``Settings.gateway_port``): traffic crosses every phase
the dashboards show. ``sandbox load run --target URL`` sends it elsewhere (the engine itself, to
compare).
"""

from __future__ import annotations

from sandbox.settings import Settings

__all__ = ["default_target"]


def default_target(settings: Settings) -> str:
    return settings.url(settings.gateway_port)
