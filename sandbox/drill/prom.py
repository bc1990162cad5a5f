"""The Prometheus and Alertmanager queries the drill makes, with errors that say what failed."""

from __future__ import annotations

import math
from typing import Any

import httpx

__all__ = ["PromClient", "PromError", "Series"]

Series = list[tuple[float, float]]  # (unix time, value)


class PromError(Exception):
    """Prometheus or Alertmanager could not answer a query; the message names the query."""


class PromClient:
    def __init__(
        self, prometheus_url: str, alertmanager_url: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=2.0))

    def close(self) -> None:
        self._client.close()

    def _get(self, url: str, params: dict[str, Any], what: str) -> Any:
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise PromError(f"{what}: {type(exc).__name__} on {url}") from exc
        try:
            body = response.json()
        except ValueError:
            raise PromError(
                f"{what}: {url} answered {response.status_code}: {response.text[:200]}"
            ) from None
        if response.status_code != 200 or (
            isinstance(body, dict) and body.get("status") == "error"
        ):
            raise PromError(
                f"{what}: {body.get('error', body) if isinstance(body, dict) else body}"
            )
        return body

    def query(self, expr: str, at: float | None = None) -> float | None:
        """The largest value of an instant query (series reduce to their worst case), None when empty."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        body = self._get(f"{self.prometheus_url}/api/v1/query", params, f"query {expr!r}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return _num(data["result"][1])
        values = [_num(item["value"][1]) for item in data["result"]]
        values = [v for v in values if not math.isnan(v)]
        return max(values) if values else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Series]:
        """Each series of a range query, keyed by its labels printed as ``{a="b"}``."""
        params = {"query": expr, "start": start, "end": end, "step": max(step, 1.0)}
        body = self._get(
            f"{self.prometheus_url}/api/v1/query_range", params, f"range query {expr!r}"
        )
        out: dict[str, Series] = {}
        for item in body["data"]["result"]:
            labels = ",".join(
                f'{k}="{v}"' for k, v in sorted(item["metric"].items()) if k != "__name__"
            )
            out["{" + labels + "}"] = [(float(t), _num(v)) for t, v in item["values"]]
        return out

    def worst_over_time(self, expr: str, start: float, end: float, step: float) -> Series:
        """The largest value across series at each step (the worst replica, the worst tenant)."""
        by_time: dict[float, float] = {}
        for series in self.query_range(expr, start, end, step).values():
            for t, v in series:
                if not math.isnan(v):
                    by_time[t] = max(v, by_time.get(t, -math.inf))
        return sorted(by_time.items())

    def firing_alerts(self) -> list[str]:
        """Names of alerts Alertmanager holds as active (not silenced or inhibited)."""
        if self.alertmanager_url is None:
            raise PromError("no Alertmanager URL configured")
        body = self._get(
            f"{self.alertmanager_url}/api/v2/alerts",
            {"active": "true", "silenced": "false", "inhibited": "false"},
            "Alertmanager alerts",
        )
        return sorted({a["labels"].get("alertname", "?") for a in body})

    def prometheus_firing(self) -> list[str]:
        """Alerts Prometheus itself evaluates as firing (no Alertmanager delay)."""
        body = self._get(f"{self.prometheus_url}/api/v1/alerts", {}, "Prometheus alerts")
        return sorted(
            {
                a["labels"].get("alertname", "?")
                for a in body["data"]["alerts"]
                if a.get("state") == "firing"
            }
        )


def _num(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan
