"""URLs into the console (or Grafana in compose): one dashboard, one time range, one panel.

The console takes Grafana's own URL form (``/d/<uid>?from=<ms>&to=now&viewPanel=<id>``), so the
same link works against the console in local mode and against Grafana in compose mode, where
Grafana answers on the console's port. An alert's ``dashboard`` annotation is such a path.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from sandbox.settings import Mode, Settings

__all__ = ["dashboard_link", "page_links", "traces_link"]

DEFAULT_DASHBOARD = "/d/sandbox-overview"


def _ms(ts: float) -> str:
    return str(int(ts * 1000))


def dashboard_link(
    settings: Settings, path: str | None, start: float | None = None, end: float | None = None
) -> str:
    """``path`` (``/d/sandbox-rag?viewPanel=1``) with the time range added; ``end`` None = now."""
    parts = urlsplit(path or DEFAULT_DASHBOARD)
    query = dict(parse_qsl(parts.query))
    if start is not None:
        query["from"] = _ms(start)
        query["to"] = "now" if end is None else _ms(end)
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{settings.console_url}{parts.path or DEFAULT_DASHBOARD}{suffix}"


def traces_link(settings: Settings, **filters: str) -> str:
    """The console's traces view with filters (local mode only: compose has Tempo in Grafana)."""
    kept = {k: v for k, v in filters.items() if v}
    return f"{settings.console_url}/traces" + (f"?{urlencode(kept)}" if kept else "")


def page_links(
    settings: Settings, path: str | None, start: float, end: float | None = None
) -> list[str]:
    """What the drill prints under its page: where to look, in the mode the stack runs in."""
    dashboard = dashboard_link(settings, path, start, end)
    if settings.resolve_mode() is Mode.COMPOSE:
        return [
            f"  dashboard (Grafana): {dashboard}",
            f"  traces: Grafana's Explore, Tempo ({settings.console_url}/explore); "
            f"Prometheus: {settings.prometheus_url}",
        ]
    return [
        f"  dashboard: {dashboard}",
        f"  console: {settings.console_url}/drill (the page, timeline, hints); "
        f"traces: {traces_link(settings)} (or `sandbox traces`); Prometheus: {settings.prometheus_url}",
    ]
