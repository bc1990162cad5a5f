"""A component of the stack: how to start it, how to know it is usable, how to scrape it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from sandbox.runtime.base import ServiceSpec
from sandbox.settings import Settings

__all__ = ["Component", "Readiness", "ScrapeTarget", "http_ready"]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    why: str = ""  # what is missing when not ready, in words a user can act on

    @classmethod
    def ok(cls) -> Readiness:
        return cls(True, "")

    @classmethod
    def no(cls, why: str) -> Readiness:
        return cls(False, why)


@dataclass(frozen=True)
class ScrapeTarget:
    """One entry of Prometheus' file-based service discovery."""

    job: str
    address: str  # host:port as Prometheus reaches it
    labels: dict[str, str]


@dataclass(frozen=True)
class Component:
    """Everything `sandbox up/status/down` needs to know about one service.

    ``check`` must be cheap and bounded (it is polled); it answers whether the component is
    *usable* (the engine completes a request, Prometheus has every target up), not just alive.
    """

    name: str
    spec: Callable[[Settings], ServiceSpec]
    url: Callable[[Settings], str]
    check: Callable[[Settings, httpx.Client], Readiness]
    scrape: Callable[[Settings], list[ScrapeTarget]] = lambda settings: []
    # Start order: lower first. Prometheus comes after everything it scrapes.
    order: int = 50


def http_ready(client: httpx.Client, url: str, what: str) -> Readiness:
    """Ready when GET url answers 200; otherwise say what answered instead."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return Readiness.no(f"{what}: {type(exc).__name__} on {url}")
    if response.status_code != 200:
        return Readiness.no(f"{what}: {url} answered {response.status_code}")
    return Readiness.ok()
