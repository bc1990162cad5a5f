"""A small client of the gateway's admin API (the CLI, faults and the autoscaler use it)."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.admin_paths import GATEWAY_PATHS
from sandbox.exceptions import UpstreamError
from sandbox.openai_errors import error_message

__all__ = ["GatewayAdmin", "GatewayAdminError", "parse_weights"]


class GatewayAdminError(UpstreamError):
    """The gateway refused or could not be reached; the message says which and why."""


def parse_weights(pairs: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``["stable=90", "canary=10"]`` -> ``{"stable": 90.0, "canary": 10.0}``."""
    weights: dict[str, float] = {}
    for pair in pairs:
        version, sep, value = pair.partition("=")
        try:
            if not sep or not version:
                raise ValueError
            weights[version] = float(value)
        except ValueError:
            raise GatewayAdminError(f"{pair!r}: expected version=weight, e.g. stable=90") from None
    return weights


class GatewayAdmin:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)

    def __enter__(self) -> GatewayAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._client.request(method, f"{self.url}{path}", json=body)
        except httpx.HTTPError as exc:
            raise GatewayAdminError(
                f"gateway at {self.url} unreachable ({type(exc).__name__}); is the stack up?"
            ) from exc
        if response.status_code != 200:
            message = error_message(response) or response.text[:300]
            raise GatewayAdminError(f"gateway refused {method} {path}: {message}")
        payload = response.json()
        if not isinstance(payload, dict):
            raise GatewayAdminError(f"gateway answered {method} {path} with {payload!r:.200}")
        return payload

    def state(self) -> dict[str, Any]:
        return self._call("GET", GATEWAY_PATHS.state)

    def set_weights(self, weights: dict[str, float]) -> dict[str, Any]:
        return self._call("PUT", GATEWAY_PATHS.weights, weights)

    def set_shadow(self, version: str | None, share: float = 0.0) -> dict[str, Any]:
        if version is None:
            return self._call("DELETE", GATEWAY_PATHS.shadow)
        return self._call("PUT", GATEWAY_PATHS.shadow, {"version": version, "share": share})

    def set_admission(self, **fields: Any) -> dict[str, Any]:
        return self._call("PUT", GATEWAY_PATHS.admission, fields)

    def set_rag(self, **fields: Any) -> dict[str, Any]:
        return self._call("PUT", GATEWAY_PATHS.rag, fields)

    def add_engine(self, name: str, version: str, url: str) -> dict[str, Any]:
        return self._call(
            "POST", GATEWAY_PATHS.engines, {"name": name, "version": version, "url": url}
        )

    def remove_engine(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", GATEWAY_PATHS.engine.format(name=name))
