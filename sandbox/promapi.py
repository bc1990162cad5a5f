"""The one client of Prometheus' and Alertmanager's HTTP APIs that the whole sandbox uses.

The drill's checks, the renderer's panels and the autoscaler's signal all ask Prometheus the
same questions; they differ only in what they do when a query returns several series. That
choice is never implicit here: ``value`` takes a ``Reduce`` (the worst replica, the sum over
tenants, or "there must be exactly one"), and range queries return every series for the caller
to reduce with ``reduce_series``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from sandbox.exceptions import UpstreamError

__all__ = [
    "AlertmanagerClient",
    "Exemplar",
    "PrometheusClient",
    "PrometheusError",
    "Reduce",
    "Sample",
    "Series",
    "label_key",
    "reduce_series",
]


class PrometheusError(UpstreamError):
    """Prometheus or Alertmanager could not answer; the message names the query and the reason."""


class Reduce(StrEnum):
    """How several series become one number."""

    MAX = "max"  # the worst replica, tenant or version: what a check against a ceiling wants
    MIN = "min"
    SUM = "sum"
    ONLY = "only"  # exactly one series is expected; several is the caller's query bug


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Exemplar:
    """One exemplar: the series it belongs to, its own labels (``trace_id``), when, and its value."""

    series_labels: Mapping[str, str]
    labels: Mapping[str, str]
    time: float
    value: float


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]

    @property
    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.times, self.values, strict=True))


def label_key(labels: Mapping[str, str]) -> str:
    """Labels printed as ``{a="b",c="d"}`` (without ``__name__``), sorted: a stable series key."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return "{" + inner + "}"


def _reduce(values: Iterable[float], how: Reduce, what: str) -> float | None:
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return None
    if how is Reduce.ONLY:
        if len(kept) > 1:
            raise PrometheusError(
                f"{what} returned {len(kept)} series; aggregate it to one (sum, avg)"
            )
        return kept[0]
    if how is Reduce.MAX:
        return max(kept)
    if how is Reduce.MIN:
        return min(kept)
    return math.fsum(kept)


def reduce_series(series: Iterable[Series], how: Reduce) -> list[tuple[float, float]]:
    """Several series reduced to one, step by step (NaN points are skipped)."""
    by_time: dict[float, list[float]] = {}
    for s in series:
        for t, v in zip(s.times, s.values, strict=True):
            by_time.setdefault(t, []).append(v)
    out = []
    for t in sorted(by_time):
        value = _reduce(by_time[t], Reduce.MAX if how is Reduce.ONLY else how, "range query")
        if value is not None:
            out.append((t, value))
    return out


def _num(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


class _Api:
    """GET a JSON API with errors that say what was asked and why it failed."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        http: httpx.Client | None = None,
        bearer_token: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._owned = http is None
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout_s, connect=2.0))
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        url = f"{self.url}{path}"
        try:
            response = self._http.get(url, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{what}: {type(exc).__name__} on {url}") from exc
        if response.status_code in (401, 403):
            raise PrometheusError(
                f"{what}: {url} answered {response.status_code} (unauthorised: pass a bearer token)"
            )
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"{what}: {url} answered {response.status_code}: {response.text[:200]}"
            ) from None
        if response.status_code != 200 or (
            isinstance(body, dict) and body.get("status") == "error"
        ):
            detail = body.get("error", body) if isinstance(body, dict) else body
            raise PrometheusError(f"{what}: {detail}")
        return body


class PrometheusClient(_Api):
    """Instant and range queries, and the alerts Prometheus itself evaluates."""

    @classmethod
    def with_token_file(cls, url: str, token_file: Path | None, **kwargs: Any) -> PrometheusClient:
        token = token_file.read_text().strip() if token_file else None
        return cls(url, bearer_token=token, **kwargs)

    def __enter__(self) -> PrometheusClient:
        return self

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus has stored."""
        body = self.get("/api/v1/label/__name__/values", {}, "metric names")
        return set(body.get("data") or [])

    def instant(self, expr: str, at: float | None = None) -> list[Sample]:
        """Every sample of an instant query (a scalar is one sample without labels)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.get("/api/v1/query", params, f"query {expr!r}")["data"]
        if data["resultType"] == "scalar":
            return [Sample({}, _num(data["result"][1]))]
        return [Sample(item["metric"], _num(item["value"][1])) for item in data["result"]]

    def value(self, expr: str, reduce: Reduce, at: float | None = None) -> float | None:
        """One number from an instant query, reduced as asked; None when there is no data."""
        return _reduce((s.value for s in self.instant(expr, at)), reduce, f"query {expr!r}")

    def range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        """Every series of a range query (step at least 1 s)."""
        params = {
            "query": expr,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{max(step_s, 1.0):g}",
        }
        data = self.get("/api/v1/query_range", params, f"range query {expr!r}")["data"]
        out = []
        for item in data["result"]:
            points = [(float(t), _num(v)) for t, v in item.get("values", [])]
            out.append(
                Series(
                    item.get("metric", {}),
                    tuple(t for t, _ in points),
                    tuple(v for _, v in points),
                )
            )
        return out

    def exemplars(self, expr: str, start: float, end: float) -> list[Exemplar]:
        """The exemplars stored for the series an expression selects (needs exemplar storage)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        data = self.get("/api/v1/query_exemplars", params, f"exemplars of {expr!r}")["data"]
        return [
            Exemplar(
                item.get("seriesLabels", {}),
                ex.get("labels", {}),
                float(ex.get("timestamp", 0.0)),
                _num(ex.get("value")),
            )
            for item in data or []
            for ex in item.get("exemplars", [])
        ]

    def ready(self) -> str | None:
        """None when Prometheus answers ready, else why not (for a banner, not an exception)."""
        try:
            response = self._http.get(f"{self.url}/-/ready", headers=self._headers)
        except httpx.HTTPError as exc:
            return f"Prometheus at {self.url} does not answer ({type(exc).__name__})"
        if response.status_code != 200:
            return f"Prometheus at {self.url} is not ready ({response.status_code})"
        return None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Prometheus evaluates now, pending or firing, as its API gives them
        (``labels``, ``annotations``, ``state``, ``value``...)."""
        body = self.get("/api/v1/alerts", {}, "Prometheus alerts")
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    def firing_alerts(self) -> list[str]:
        """Names of the alerts Prometheus evaluates as firing now (no Alertmanager delay)."""
        return sorted(
            {a["labels"].get("alertname", "?") for a in self.alerts() if a.get("state") == "firing"}
        )


class AlertmanagerClient(_Api):
    """The alerts Alertmanager holds: what a pager would show."""

    def __enter__(self) -> AlertmanagerClient:
        return self

    def active_alerts(self) -> list[str]:
        """Names of active alerts (not silenced or inhibited)."""
        body = self.get(
            "/api/v2/alerts",
            {"active": "true", "silenced": "false", "inhibited": "false"},
            "Alertmanager alerts",
        )
        return sorted({a["labels"].get("alertname", "?") for a in body})
