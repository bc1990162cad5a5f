"""The local renderer against a real (throwaway) Prometheus: every panel of every dashboard gets
an image, the page is self-contained, units and variables are handled, data draws non-blank."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from sandbox.render import RenderResult, dashboard_names, load_dashboard, render_dashboard
from sandbox.render.query import legend, substitute
from sandbox.render.units import format_value
from tests.support import throwaway_prometheus


def _variance(path: Path) -> float:
    return float(sum(ImageStat.Stat(Image.open(path).convert("L")).var))


def _panel(
    panel_id: int, kind: str, title: str, grid: tuple[int, int, int, int], unit: str, expr: str
) -> dict[str, Any]:
    """Panel JSON as Grafana writes it: one query, a unit, a place (x, y, w, h) on the grid."""
    x, y, w, h = grid
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}},
        "targets": [{"refId": "A", "expr": expr}],
    }


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with throwaway_prometheus(tmp_path_factory.mktemp("prom"), scrape_self=True) as url:
        yield url


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.0123, "s", "12.3 ms"),
        (2.5, "s", "2.5 s"),
        (300, "s", "5 min"),
        (0.0000042, "s", "4.2 µs"),
        (0.42, "percentunit", "42%"),
        (3.0, "reqps", "3 req/s"),
        (1500, "suffix: tok/s", "1.5k tok/s"),
        (float("nan"), "s", "No data"),
        (None, "short", "No data"),
        (1.23456, "s", "1.23 s"),
    ],
)
def test_units(value: float | None, unit: str, shown: str) -> None:
    assert format_value(value, unit, 2 if shown == "1.23 s" else None) == shown


def test_variables_and_macros_are_substituted() -> None:
    expr = 'sum(rate(x{version=~"$version", replica=~"${engine}"}[$__rate_interval])) / $versions'
    out = substitute(expr, {"version": ".*", "engine": ".*"}, step_s=5, range_s=900)
    assert out == 'sum(rate(x{version=~".*", replica=~".*"}[60s])) / $versions'
    assert legend("p99 {{replica}}", {"replica": "engine"}) == "p99 engine"
    assert legend("", {"__name__": "up", "job": "engine"}) == '{job="engine"}'


def test_unknown_dashboard_names_the_known_ones() -> None:
    with pytest.raises(FileNotFoundError, match="overview"):
        load_dashboard("nope")


def test_every_dashboard_renders_an_image_per_panel(prometheus: str, tmp_path: Path) -> None:
    end = time.time()
    for name in dashboard_names():
        _, spec = load_dashboard(name)
        result = render_dashboard(
            name,
            prometheus,
            end - 600,
            end,
            out_dir=tmp_path,
            annotations=[{"time": end - 120, "text": "fault injected"}],
        )
        assert isinstance(result, RenderResult) and isinstance(result, tuple)
        assert [p.panel_id for p in result.panels] == [p.id for p in spec.panels]
        assert all(p.exists() and p.suffix == ".png" for p in result), name
        assert not [e for p in result.panels for e in p.errors], name  # every query accepted
        page = result.html.read_text()
        assert page.count("data:image/png;base64,") == len(spec.panels)
        assert not re.search(r"(src|href)=[\"']https?://", page), "the page must not load anything"
        assert "fault injected" in page


def test_live_series_draw_a_non_blank_panel_and_a_stat(prometheus: str, tmp_path: Path) -> None:
    # Prometheus scrapes itself: wait for a few samples, then draw its own series.
    import httpx

    from tests.support import poll_until

    poll_until(
        lambda: httpx.get(
            f"{prometheus}/api/v1/query", params={"query": "count_over_time(up[1m]) > 2"}
        ).json()["data"]["result"],
        "three self-scrapes",
        30,
    )
    board = {
        "uid": "test",
        "title": "test",
        "description": "",
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "title": "scrape duration",
                "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
                "fieldConfig": {
                    "defaults": {
                        "unit": "s",
                        "thresholds": {
                            "steps": [
                                {"value": None, "color": "green"},
                                {"value": 0.5, "color": "red"},
                            ]
                        },
                    }
                },
                "targets": [
                    {"refId": "A", "expr": "scrape_duration_seconds", "legendFormat": "{{job}}"},
                    {"refId": "B", "expr": "time() % 60 / 100", "legendFormat": "sawtooth"},
                ],
            },
            _panel(2, "stat", "up", (12, 0, 4, 4), "short", "sum(up)"),
            _panel(3, "timeseries", "nothing", (0, 8, 12, 8), "s", "no_such_metric"),
            _panel(4, "timeseries", "broken", (12, 8, 12, 8), "s", "sum(rate(x[1m]"),
        ],
    }
    result = render_dashboard(board, prometheus, time.time() - 120, out_dir=tmp_path)
    by_id = {p.panel_id: p for p in result.panels}
    assert by_id[1].series == 2 and by_id[2].series == 1 and by_id[3].series == 0
    assert by_id[4].errors and "parse error" in by_id[4].errors[0]
    assert _variance(by_id[1].image) > 200, "a panel with data looks blank"
    # a blank-looking panel is recognisable, so the check above can fail
    assert _variance(by_id[3].image) < _variance(by_id[1].image)
    assert Image.open(by_id[1].image).size == (12 * 60, 8 * 30)
