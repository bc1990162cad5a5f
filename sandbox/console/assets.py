"""The chart library (uPlot), installed from npm by `make setup` into a git-ignored folder and
served by the console itself: nothing is committed, nothing comes from a CDN at run time."""

from __future__ import annotations

from pathlib import Path

from sandbox.settings import REPO_ROOT

__all__ = ["UPLOT_VERSION", "VENDOR_DIR", "chart_library"]

UPLOT_VERSION = "1.6.32"  # scripts/setup.sh installs this version
VENDOR_DIR = REPO_ROOT / ".vendor" / "console"
_FILES = {"uPlot.min.js": "uPlot.iife.min.js", "uPlot.min.css": "uPlot.min.css"}


def chart_library(vendor_dir: Path = VENDOR_DIR) -> dict[str, Path] | None:
    """The files the page loads, by the name it asks for; None when setup has not installed them."""
    dist = vendor_dir / "node_modules" / "uplot" / "dist"
    found = {name: dist / file for name, file in _FILES.items()}
    return found if all(p.is_file() for p in found.values()) else None
