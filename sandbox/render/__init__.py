"""Grafana dashboard JSON + live Prometheus, drawn without Grafana.

``model`` reads the dashboard JSON, ``query`` turns panels into Prometheus queries and named
series (shared by the PNG renderer, the drill's report and the live console), ``draw``/``page``/
``render`` make PNGs and a self-contained HTML page (matplotlib). The renderer's names are loaded
on first use, so the console can use ``model`` and ``query`` without importing matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.render.model import DASHBOARD_DIR, Annotation, dashboard_names, load_dashboard

if TYPE_CHECKING:
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

_LAZY = {"RenderResult", "RenderedPanel", "render_dashboard"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from sandbox.render import render

        return getattr(render, name)
    raise AttributeError(f"module 'sandbox.render' has no attribute {name!r}")
