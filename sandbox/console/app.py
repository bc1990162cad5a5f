"""The console's web app: HTML pages for people, a JSON API for the page's script.

Pages: ``/`` (dashboards), ``/d/<uid or name>`` (one dashboard, Grafana's URL form), ``/traces``
and ``/traces/<trace id>``, ``/drill``. API: ``/api/d/<uid>`` (layout), ``/api/d/<uid>/data``
(series, marks, exemplars over ``from``/``to``), ``/api/traces``, ``/api/traces/<id>``,
``/api/drill``, ``POST /api/drill/hint``. The browser never talks to Prometheus itself: the data
comes from this app, and Prometheus' own UI is only linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox import timeline
from sandbox.console import pages
from sandbox.console.assets import chart_library
from sandbox.console.dashboards import Catalog, dashboard_data, dashboard_layout, parse_range
from sandbox.console.drill import drill_view, next_hint, on_call_sees, secret_since
from sandbox.console.traces import RequestFilter, SpanIndex, request_summary, waterfall
from sandbox.promapi import PrometheusClient
from sandbox.render.model import DASHBOARD_DIR
from sandbox.tracesink.store import spans_path

__all__ = ["ConsoleConfig", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _request_filter(
    tenant: str = "",
    status: str = "",
    version: str = "",
    min_ms: Annotated[float, Query(ge=0)] = 0.0,
) -> RequestFilter:
    return RequestFilter(tenant, status, version, min_ms)


# The query of the traces list, the same for its page and its API.
TraceFilter = Annotated[RequestFilter, Depends(_request_filter)]
TraceLimit = Annotated[int, Query(ge=1, le=500)]


@dataclass(frozen=True)
class ConsoleConfig:
    prometheus_url: str
    run_dir: Path
    refresh_s: float = 5.0
    query_timeout_s: float = 10.0
    dashboards_dir: Path = DASHBOARD_DIR


def _timeline_marks(run_dir: Path, start: float, end: float) -> list[dict[str, Any]]:
    """The drill's timeline as marks, by kind only (details could name the fault)."""
    marks = []
    hidden_from = secret_since(run_dir)
    for event in timeline.read(run_dir, since=start, until=end):
        kind = str(event.get("kind", ""))
        if kind in ("drill.hint", "drill.end") or not on_call_sees(event, hidden_from):
            continue
        colour = "red" if kind == "drill.page" else "orange" if kind == "drill.inject" else "blue"
        marks.append(
            {"time": float(event["ts"]), "text": kind.removeprefix("drill."), "colour": colour}
        )
    return marks


def create_app(config: ConsoleConfig) -> FastAPI:
    app = FastAPI(title="sandbox console", docs_url=None, redoc_url=None, openapi_url=None)
    catalog = Catalog(config.dashboards_dir)
    spans = SpanIndex(spans_path(config.run_dir))
    prom = PrometheusClient(config.prometheus_url, timeout_s=config.query_timeout_s)
    app.state.prometheus = prom

    def dashboard_or_404(key: str) -> tuple[str, Any]:
        found = catalog.get(key)
        if found is None:
            known = ", ".join(spec.uid for _, spec in catalog.all())
            raise HTTPException(404, f"no dashboard {key!r}; the dashboards are: {known}")
        return found

    def trace_or_404(trace_id: str) -> Any:
        trace_id = trace_id.strip().lower()
        if not _TRACE_ID.fullmatch(trace_id):
            raise HTTPException(404, f"{trace_id!r} is not a trace id (32 hex digits)")
        trace = spans.trace(trace_id)
        if trace is None:
            raise HTTPException(
                404, f"no trace {trace_id} among the spans kept (the last hour of {spans.path})"
            )
        return trace

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=exc.status_code)
        return HTMLResponse(pages.error_page(exc.status_code, detail), status_code=exc.status_code)

    # -- pages -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return pages.index_page(catalog.all(), drill_view(config.run_dir))

    @app.get("/d/{key}", response_class=HTMLResponse)
    @app.get("/d/{key}/{slug}", response_class=HTMLResponse)
    def dashboard_page(key: str, slug: str = "") -> str:
        name, spec = dashboard_or_404(key)
        layout = dashboard_layout(name, spec, config.prometheus_url)
        return pages.dashboard_page(name, spec, config.prometheus_url, config.refresh_s, layout)

    @app.get("/traces", response_class=HTMLResponse)
    def traces_page(wanted: TraceFilter, limit: TraceLimit = 50) -> str:
        rows, options = _requests(wanted, limit)
        return pages.traces_page(rows, options, wanted, _paged_tenant())

    @app.get("/traces/{trace_id}", response_class=HTMLResponse)
    def trace_page(trace_id: str) -> str:
        return pages.trace_page(waterfall(trace_or_404(trace_id)))

    @app.get("/drill", response_class=HTMLResponse)
    def drill_page() -> str:
        return pages.drill_page(drill_view(config.run_dir), config.prometheus_url)

    @app.post("/drill/hint")
    def drill_hint_form() -> RedirectResponse:
        next_hint(config.run_dir)
        return RedirectResponse("/drill#hints", status_code=303)

    # -- API ---------------------------------------------------------------------------------
    @app.get("/api/d/{key}")
    def api_layout(key: str) -> dict[str, Any]:
        name, spec = dashboard_or_404(key)
        return dashboard_layout(name, spec, config.prometheus_url)

    @app.get("/api/d/{key}/data")
    def api_data(
        key: str,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
    ) -> dict[str, Any]:
        _, spec = dashboard_or_404(key)
        try:
            span = parse_range(start, end)
        except ValueError as exc:
            raise HTTPException(400, f"bad time range: {exc}") from exc
        data = dashboard_data(prom, spec, span, workers=8)
        data["annotations"] += _timeline_marks(config.run_dir, span.start, span.end)
        view = drill_view(config.run_dir)
        data["drill"] = _drill_banner(view)
        return data

    @app.get("/api/traces")
    def api_traces(wanted: TraceFilter, limit: TraceLimit = 50) -> dict[str, Any]:
        rows, options = _requests(wanted, limit)
        return {"requests": rows, "options": options, "paged_tenant": _paged_tenant()}

    @app.get("/api/traces/{trace_id}")
    def api_trace(trace_id: str) -> dict[str, Any]:
        return waterfall(trace_or_404(trace_id))

    @app.get("/api/drill")
    def api_drill() -> dict[str, Any]:
        return {"drill": drill_view(config.run_dir)}

    @app.post("/api/drill/hint")
    def api_hint() -> dict[str, Any]:
        return {"hint": next_hint(config.run_dir)}

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "chart_library": chart_library() is not None}

    # -- files -------------------------------------------------------------------------------
    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        path = STATIC_DIR / name
        if "/" in name or not path.is_file():
            raise HTTPException(404, f"no file {name!r}")
        return FileResponse(path, headers={"Cache-Control": "max-age=60"})

    @app.get("/vendor/{name}")
    def vendor(name: str) -> FileResponse:
        library = chart_library()
        if library is None or name not in library:
            raise HTTPException(
                404, "the chart library is not installed: run `make setup` (npm package uplot)"
            )
        return FileResponse(library[name], headers={"Cache-Control": "max-age=3600"})

    def _paged_tenant() -> str:
        view = drill_view(config.run_dir)
        if view and view.get("running") and view.get("page"):
            return str(view["page"].get("labels", {}).get("tenant", ""))
        return ""

    def _requests(
        wanted: RequestFilter, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        summaries = [request_summary(t) for t in spans.requests()]
        options = {
            "tenant": sorted({s["tenant"] for s in summaries if s["tenant"]}),
            "version": sorted({s["version"] for s in summaries if s["version"]}),
            "status": sorted({str(s["status"]) for s in summaries if s["status"] != ""}),
        }
        paged = _paged_tenant()
        kept = [s for s in summaries if wanted.accepts(s)]
        # The page at hand first: the paged tenant's requests, slowest first, then the rest.
        kept.sort(key=lambda s: (not (paged and s["tenant"] == paged), -s["duration_ms"]))
        return kept[:limit], options

    return app


def _drill_banner(view: dict[str, Any] | None) -> dict[str, Any] | None:
    if not view or not view.get("running"):
        return None
    page = view.get("page") or {}
    return {
        "step": view.get("step"),
        "alert": page.get("alert"),
        "window": view.get("window"),
    }
