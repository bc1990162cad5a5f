"""The local dashboard renderer: Grafana dashboard JSON + live Prometheus -> PNG per panel and a
self-contained HTML page (matplotlib; no Grafana, no CDN). Used by ``sandbox dashboards render``
and by the drill's report."""

from sandbox.render.draw import Annotation
from sandbox.render.model import DASHBOARD_DIR, dashboard_names, load_dashboard
from sandbox.render.render import RenderedPanel, RenderResult, render_dashboard

__all__ = [
    "DASHBOARD_DIR",
    "Annotation",
    "RenderResult",
    "RenderedPanel",
    "dashboard_names",
    "load_dashboard",
    "render_dashboard",
]
