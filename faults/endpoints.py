"""Where the services a change talks to listen: base URLs from the settings (ports), so tests
can point them at servers of their own. The paths on those services are in
``sandbox.admin_paths``, shared with the apps that serve them."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.settings import Settings

__all__ = ["Endpoints"]


@dataclass(frozen=True)
class Endpoints:
    gateway_url: str
    retriever_url: str
    loadgen_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        return cls(
            gateway_url=settings.url(settings.gateway_port),
            retriever_url=settings.url(settings.retriever_port),
            loadgen_url=settings.url(settings.loadgen_port),
        )
