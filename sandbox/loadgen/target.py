"""Where the generator sends its requests when nobody says otherwise: the one place to change.

For now the engine itself (``Settings.engine_url``); once traffic should pass through the
gateway, this function returns ``settings.url(settings.gateway_port)`` and every caller
(``sandbox load run``, the stack's ``loadgen`` service) follows.
"""

from __future__ import annotations

from sandbox.settings import Settings

__all__ = ["default_target"]


def default_target(settings: Settings) -> str:
    return settings.engine_url
