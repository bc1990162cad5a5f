"""One self-contained HTML page per dashboard: panels placed on Grafana's 24-column grid, images
embedded as base64 PNG, no script and no external asset."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox.render.draw import COLUMN_PX, ROW_PX, Annotation
from sandbox.render.model import DashboardSpec, PanelSpec

__all__ = ["write_composite", "write_page"]

_CSS = f"""
body {{ font-family: sans-serif; margin: 16px; background: #f4f5f5; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px 0; }}
p.meta {{ color: #555; font-size: 12px; margin: 0 0 12px 0; }}
.grid {{ display: grid; grid-template-columns: repeat(24, {COLUMN_PX}px); grid-auto-rows: {ROW_PX}px; gap: 0; }}
.panel {{ background: white; border: 1px solid #ddd; box-sizing: border-box; overflow: hidden; }}
.panel img {{ display: block; width: 100%; height: 100%; object-fit: contain; }}
ul.marks {{ font-size: 12px; color: #555; }}
"""


def _cell(panel: PanelSpec, image: Path) -> str:
    data = base64.b64encode(image.read_bytes()).decode("ascii")
    style = (
        f"grid-column: {panel.x + 1} / span {panel.w}; grid-row: {panel.y + 1} / span {panel.h};"
    )
    title = html.escape(f"{panel.title}: {panel.description}")
    return (
        f'<div class="panel" id="panel-{panel.id}" style="{style}" title="{title}">'
        f'<img alt="{html.escape(panel.title)}" src="data:image/png;base64,{data}"></div>'
    )


def write_composite(path: Path, images: Sequence[tuple[PanelSpec, Path]]) -> Path:
    """The whole dashboard as one PNG (panels pasted at their grid positions), for a README or a report."""
    from PIL import Image

    width = 24 * COLUMN_PX
    height = max((p.y + p.h for p, _ in images), default=1) * ROW_PX
    canvas = Image.new("RGB", (width, height), (244, 245, 245))
    for panel, image in images:
        with Image.open(image) as tile:
            canvas.paste(
                tile.convert("RGB").resize((panel.w * COLUMN_PX - 4, panel.h * ROW_PX - 4)),
                (panel.x * COLUMN_PX + 2, panel.y * ROW_PX + 2),
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def write_page(
    path: Path,
    name: str,
    spec: DashboardSpec,
    images: Sequence[tuple[PanelSpec, Path]],
    start: float,
    end: float,
    annotations: Sequence[Annotation],
) -> Path:
    stamp = "%Y-%m-%d %H:%M:%S"
    marks = "".join(
        f"<li>{time.strftime('%H:%M:%S', time.localtime(a.time))} {html.escape(a.text)}</li>"
        for a in sorted(annotations, key=lambda a: a.time)
        if start <= a.time <= end
    )
    body = "".join(_cell(panel, image) for panel, image in images)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(spec.title)}</h1>"
        f"<p class='meta'>{html.escape(spec.description)}<br>dashboard <code>{html.escape(name)}</code> (uid "
        f"<code>{html.escape(spec.uid)}</code>), {time.strftime(stamp, time.localtime(start))} to "
        f"{time.strftime(stamp, time.localtime(end))}; every template variable = All</p>"
        f"<div class='grid'>{body}</div>"
        + (f"<h2>Annotations</h2><ul class='marks'>{marks}</ul>" if marks else "")
        + "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
