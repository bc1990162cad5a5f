"""Reading the scaling signal: one instant PromQL query."""

from __future__ import annotations

import math

import httpx

__all__ = ["SignalError", "query_value"]


class SignalError(Exception):
    """Prometheus could not answer the query; the message says why."""


def query_value(client: httpx.Client, prometheus_url: str, promql: str) -> float | None:
    """The query's single value; None when it returns no series (no data yet)."""
    try:
        response = client.get(f"{prometheus_url}/api/v1/query", params={"query": promql})
    except httpx.HTTPError as exc:
        raise SignalError(f"prometheus at {prometheus_url}: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise SignalError(
            f"prometheus answered {response.status_code}: {response.text[:200]}"
        ) from exc
    if body.get("status") != "success":
        raise SignalError(f"query {promql!r}: {body.get('error', response.text[:200])}")
    data = body["data"]
    if data["resultType"] == "scalar":
        value = float(data["result"][1])
    else:
        results = data["result"]
        if not results:
            return None
        if len(results) > 1:
            raise SignalError(
                f"query {promql!r} returned {len(results)} series; aggregate it to one (sum, avg)"
            )
        value = float(results[0]["value"][1])
    return None if math.isnan(value) else value
