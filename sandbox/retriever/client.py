"""A small HTTP client for the retriever, for the CLI, the gateway and fault injectors."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.admin_paths import RETRIEVER_PATHS
from sandbox.exceptions import UpstreamError
from sandbox.openai_errors import error_message

__all__ = ["RetrieverClient", "RetrieverClientError"]


class RetrieverClientError(UpstreamError):
    """The retriever answered with an error, or could not be reached; the message says which."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RetrieverClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout_s)

    def __enter__(self) -> RetrieverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RetrieverClientError(
                f"retriever at {self._client.base_url} unreachable: {exc!r}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise RetrieverClientError(
                f"{method} {path} -> {response.status_code}: {error_message(response) or body}",
                response.status_code,
                body,
            )
        if not isinstance(body, dict):
            raise RetrieverClientError(
                f"{method} {path} -> {response.status_code}: not a JSON object: {body!r:.200}",
                response.status_code,
                body,
            )
        return body

    def search(
        self, query: str, k: int = 5, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self._call("POST", "/search", json={"query": query, "k": k}, headers=headers)

    def set_fault(
        self, phase: str, kind: str, params: dict[str, Any], ttl_s: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"phase": phase, "kind": kind, "params": params}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._call("PUT", RETRIEVER_PATHS.fault, json=body)

    def clear_fault(self, phase: str | None = None) -> list[str]:
        params = {"phase": phase} if phase else None
        return list(self._call("DELETE", RETRIEVER_PATHS.fault, params=params)["cleared"])

    def faults(self) -> dict[str, Any]:
        return dict(self._call("GET", RETRIEVER_PATHS.fault)["faults"])
