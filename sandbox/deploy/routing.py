"""What the deployment layer needs from the gateway, and its implementation over the admin API.

The deployer only talks to this small protocol, so it can run without a gateway (``None``:
replicas are still started, scraped and reported) and stays independent of the admin API's
details. The gateway routes by *version*; the deployer passes its tracks (stable, canary) there.
"""

from __future__ import annotations

from typing import Protocol

from sandbox.exceptions import UpstreamError
from sandbox.gateway.admin import GatewayAdmin, GatewayAdminError

__all__ = ["GatewayRouting", "HttpGatewayRouting", "RoutingError"]


class RoutingError(UpstreamError):
    """The gateway refused a routing change or could not be reached."""


class GatewayRouting(Protocol):
    def register(self, name: str, version: str, url: str) -> None: ...

    def unregister(self, name: str) -> None:
        """Remove an engine; removing one the gateway does not know is not an error."""
        ...

    def set_weights(self, weights: dict[str, float]) -> None: ...

    def set_shadow(self, version: str | None, share: float = 0.0) -> None: ...

    def engines(self) -> dict[str, dict[str, object]]:
        """The gateway's engines by name (version, url, ready...)."""
        ...


class HttpGatewayRouting:
    """GatewayRouting over the gateway's ``/admin`` API (``sandbox.gateway.admin``)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def _admin(self) -> GatewayAdmin:
        return GatewayAdmin(self.url, self.timeout_s)

    def register(self, name: str, version: str, url: str) -> None:
        with self._admin() as admin:
            try:
                known = admin.state().get("engines", [])
                if any(e.get("name") == name for e in _engine_list(known)):
                    # Registered already (a retry after a crash): replace, the URL may differ.
                    admin.remove_engine(name)
                admin.add_engine(name, version, url)
            except GatewayAdminError as exc:
                raise RoutingError(str(exc)) from exc

    def unregister(self, name: str) -> None:
        with self._admin() as admin:
            try:
                admin.remove_engine(name)
            except GatewayAdminError as exc:
                if "no engine named" in str(exc):
                    return
                raise RoutingError(str(exc)) from exc

    def set_weights(self, weights: dict[str, float]) -> None:
        with self._admin() as admin:
            try:
                admin.set_weights(weights)
            except GatewayAdminError as exc:
                raise RoutingError(str(exc)) from exc

    def set_shadow(self, version: str | None, share: float = 0.0) -> None:
        with self._admin() as admin:
            try:
                admin.set_shadow(version, share)
            except GatewayAdminError as exc:
                raise RoutingError(str(exc)) from exc

    def engines(self) -> dict[str, dict[str, object]]:
        with self._admin() as admin:
            try:
                return {str(e["name"]): e for e in _engine_list(admin.state().get("engines", []))}
            except GatewayAdminError as exc:
                raise RoutingError(str(exc)) from exc


def _engine_list(engines: object) -> list[dict[str, object]]:
    return [e for e in engines if isinstance(e, dict)] if isinstance(engines, list) else []
